import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

/**
 * Keys that must never reach a log line, wherever they sit in a logged object. Nothing logs them
 * on purpose; this is the second line of defence.
 */
const REDACTED_PATHS = [
  'ticket',
  'token',
  'accessToken',
  'authorization',
  'cookie',
  '*.ticket',
  '*.token',
  '*.accessToken',
  '*.authorization',
  '*.cookie',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Buffered: one write per 4 KiB (or per second) instead of one per line; flushed on exit.
    destination ?? pino.destination({ fd: 1, sync: false, minLength: 4096, periodicFlush: 1000 }),
  );
}

/** Routes Nest's `Logger` calls to pino, one JSON line each, with the caller's context. */
export class PinoLoggerService implements LoggerService {
  constructor(private readonly pino: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** Nest passes `(message, ...optional, context)`; for `error`, a stack may precede the context. */
  private write(
    level: Exclude<LevelWithSilent, 'silent'>,
    message: unknown,
    params: unknown[],
  ): void {
    if (!this.pino.isLevelEnabled(level)) {
      return;
    }
    const rest = [...params];
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = { context };
    if (level === 'error' && typeof rest[0] === 'string') {
      fields.stack = rest.shift();
    }
    if (message instanceof Error) {
      fields.err = message;
      this.pino[level](fields, message.message);
    } else if (typeof message === 'object' && message !== null) {
      const { msg, ...others } = message as Record<string, unknown>;
      this.pino[level]({ ...fields, ...others }, typeof msg === 'string' ? msg : '');
    } else {
      this.pino[level](fields, String(message));
    }
  }
}
