import { type ErrorCode, ServerMessageType } from '@switchboard/protocol';

/** Serializes a server → client frame: `{ type, id?, data?, ts }`. */
export function serverFrame(type: string, data?: unknown, id?: string): string {
  return JSON.stringify({ type, id, data, ts: Date.now() });
}

/**
 * Serializes a room stream's publication: `{ type, data, ts, room }`; the node adds `offset` when
 * the broker has given it one.
 */
export function roomFrame(type: string, data: unknown, room: string): string {
  return JSON.stringify({ type, data, ts: Date.now(), room });
}

export function errorFrame(
  code: ErrorCode,
  message: string,
  id?: string,
  details?: Record<string, unknown>,
): string {
  return serverFrame(ServerMessageType.Error, { code, message, details }, id);
}
