/** @type {import('jest').Config} */
const common = {
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: {
    '^@app/protocol$': '<rootDir>/libs/protocol/src',
    '^@app/protocol/(.*)$': '<rootDir>/libs/protocol/src/$1',
    '^@app/client$': '<rootDir>/libs/client/src',
  },
  testEnvironment: 'node',
};

module.exports = {
  testTimeout: 30000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
