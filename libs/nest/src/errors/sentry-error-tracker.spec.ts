import { ConfigError } from '../config/config.error';
import { loadSentry } from './sentry-error-tracker';

describe('loadSentry', () => {
  it('names SENTRY_DSN and the package to install when @sentry/nestjs is missing', async () => {
    const missing = Object.assign(new Error("Cannot find module '@sentry/nestjs'"), {
      code: 'MODULE_NOT_FOUND',
    });
    const loading = loadSentry(() => Promise.reject(missing));
    await expect(loading).rejects.toThrow(ConfigError);
    await expect(loading).rejects.toThrow(
      'SENTRY_DSN is set, but @sentry/nestjs is not installed: npm install @sentry/nestjs',
    );
  });

  it('lets any other failure through as it is', async () => {
    const broken = Object.assign(new Error("Cannot find module '@opentelemetry/api'"), {
      code: 'MODULE_NOT_FOUND',
    });
    await expect(loadSentry(() => Promise.reject(broken))).rejects.toBe(broken);
  });
});
