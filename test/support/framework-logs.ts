import { Logger } from '@nestjs/common';
import { createLogger, PinoLoggerService } from '../../libs/nest/src/logging/logger';
import { LogCapture } from './log-capture';

/**
 * What Nest's `Logger` wrote in this test file outside an application: the classes a test builds
 * by hand (stores on a real Redis, the drain service in a unit spec) log through the same pino
 * logger an app uses, into this capture. An app a test boots replaces it with its own, so its
 * lines go to `TestApp.logs` as before.
 */
export const frameworkLogs = new LogCapture();

// A Jest setup file (jest.config.js, every project). Without it, Nest's console logger writes its
// multi-line blocks to stdout itself, past Jest's console capture, between the test results; and a
// `Logger` that writes before any override keeps that console logger for good.
Logger.overrideLogger(new PinoLoggerService(createLogger('debug', frameworkLogs)));
