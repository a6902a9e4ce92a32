import { type ErrorCode, ServerMessageType } from '@app/protocol';

/** Serializes a server → client frame: `{ type, id?, data?, ts }`. */
export function serverFrame(type: string, data?: unknown, id?: string): string {
  return JSON.stringify({ type, id, data, ts: Date.now() });
}

export function errorFrame(
  code: ErrorCode,
  message: string,
  id?: string,
  details?: Record<string, unknown>,
): string {
  return serverFrame(ServerMessageType.Error, { code, message, details }, id);
}
