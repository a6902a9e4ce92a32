import { Injectable } from '@nestjs/common';
import {
  type ClientMessage,
  ClientMessageType,
  ErrorCode,
  MAX_MESSAGE_ID_LENGTH,
  ServerMessageType,
} from '@app/protocol';
import type { Connection } from './connection';
import { errorFrame, serverFrame } from './frames';

const ENVELOPE_KEYS = new Set(['type', 'id', 'data']);

type Envelope = ClientMessage<Record<string, unknown>>;
type ParseResult = { ok: true; message: Envelope } | { ok: false; frame: string };

/** Parses client text frames and dispatches them by `type`; every failure gets an `error` frame. */
@Injectable()
export class MessageRouter {
  handle(connection: Connection, text: string): void {
    const parsed = parseEnvelope(text);
    if (!parsed.ok) {
      connection.send(parsed.frame);
      return;
    }
    const { type, id } = parsed.message;
    switch (type) {
      case ClientMessageType.Ping:
        connection.send(serverFrame(ServerMessageType.Pong, undefined, id));
        return;
      default:
        connection.send(errorFrame(ErrorCode.UnknownType, `unknown message type "${type}"`, id));
    }
  }
}

/** Validates the envelope `{ type: string, id?: string (≤ 64), data?: object }`, nothing more. */
export function parseEnvelope(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, frame: errorFrame(ErrorCode.BadJson, 'message is not valid JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, frame: errorFrame(ErrorCode.BadEnvelope, 'message must be a JSON object') };
  }
  const envelope = value as Record<string, unknown>;
  const id = typeof envelope.id === 'string' ? envelope.id : undefined;
  const fail = (message: string, fields: string[]): ParseResult => ({
    ok: false,
    frame: errorFrame(
      ErrorCode.BadEnvelope,
      message,
      id && id.length <= MAX_MESSAGE_ID_LENGTH ? id : undefined,
      {
        fields,
      },
    ),
  });
  const extra = Object.keys(envelope).filter((key) => !ENVELOPE_KEYS.has(key));
  if (extra.length > 0) {
    return fail(`unknown properties: ${extra.join(', ')}`, extra);
  }
  if (
    typeof envelope.type !== 'string' ||
    envelope.type.length === 0 ||
    envelope.type.length > 64
  ) {
    return fail('type must be a non-empty string of at most 64 characters', ['type']);
  }
  if (
    envelope.id !== undefined &&
    (typeof envelope.id !== 'string' || envelope.id.length > MAX_MESSAGE_ID_LENGTH)
  ) {
    return fail(`id must be a string of at most ${MAX_MESSAGE_ID_LENGTH} characters`, ['id']);
  }
  const data = envelope.data;
  if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) {
    return fail('data must be an object', ['data']);
  }
  return {
    ok: true,
    message: { type: envelope.type, id, data: data as Record<string, unknown> | undefined },
  };
}
