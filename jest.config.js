/**
 * Three tiers, each runnable alone (npm run test:unit | test:integration | test:system):
 * - unit: specs beside the code, no I/O, milliseconds;
 * - integration: a real redis-server the suite starts, app instances in this process, real sockets;
 * - system: processes (the built server, SIGKILL, SIGTERM), nginx, Chromium, the Docker build
 *   replayed, the lint rules.
 * @type {import('jest').Config}
 */
const common = {
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@switchboard/protocol$': '<rootDir>/libs/protocol/src',
    '^@switchboard/client$': '<rootDir>/libs/client/src',
    '^@switchboard/nest$': '<rootDir>/libs/nest/src',
  },
  // Node's, failing a file that leaves a process it started running (test/support/children.ts).
  testEnvironment: '<rootDir>/test/support/environment.ts',
  // Nest's `Logger` outside an app writes to a capture, not between the results.
  setupFiles: ['<rootDir>/test/support/framework-logs.ts'],
};

module.exports = {
  testTimeout: 30000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.e2e-spec.ts'],
    },
    { ...common, displayName: 'system', testMatch: ['<rootDir>/test/system/**/*.e2e-spec.ts'] },
  ],
};
