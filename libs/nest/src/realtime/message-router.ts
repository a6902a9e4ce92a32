import { Injectable, Logger } from '@nestjs/common';
import {
  type ClientMessage,
  ClientMessageType,
  CloseCode,
  CloseReason,
  ErrorCode,
  MAX_LISTED_MEMBERS,
  MAX_MESSAGE_ID_LENGTH,
  ServerMessageType,
} from '@switchboard/protocol';
import { BroadcastUnavailableError } from '../core/broker/broker.interface';
import { StoreUnavailableError } from '../common/errors';
import { MetricsService } from '../metrics/metrics.service';
import { type Connection, ConnectionClosedError } from '../core/connection';
import { errorFrame, serverFrame } from '../core/frames';
import { ClientError } from './messages/client-error';
import {
  DEFAULT_HISTORY_LIMIT,
  PingData,
  PresenceListData,
  RoomData,
  RoomHistoryData,
  RoomJoinData,
  RoomMessageData,
  SessionRefreshData,
} from './messages/client-messages.dto';
import { validateData } from './messages/validate';
import { RoomsService } from './rooms/rooms.service';
import { SessionLifecycle } from './sessions/session-lifecycle';
import { ErrorTracker } from '../errors/error-tracker';
import { HostGateways } from './host/host-gateways';

const ENVELOPE_KEYS = new Set(['type', 'id', 'data']);
const MAX_TYPE_LENGTH = 64;
/** How long a client should wait before retrying while a store is unreachable. */
const UNAVAILABLE_RETRY_MS = 2_000;

type Envelope = ClientMessage<Record<string, unknown>>;
/** A handler's answer; `after` runs once the reply was sent (a recovery's missed publications). */
type Reply = { type: string; data?: unknown; after?: () => void } | void;

interface Route<T extends object> {
  dto: new () => T;
  handle(connection: Connection, data: T): Reply | Promise<Reply>;
}

/**
 * Everything a connected client can say (docs/protocol.md, Messages). Each text frame passes the flood guard, then
 * the envelope and its type's DTO are validated, then its handler runs; a socket's messages are
 * handled one at a time, in order. Every refusal is an `error` frame; only floods, repeated errors
 * and internal failures close the socket.
 */
@Injectable()
export class MessageRouter {
  private readonly logger = new Logger(MessageRouter.name);
  private readonly routes: ReadonlyMap<string, Route<object>>;

  constructor(
    rooms: RoomsService,
    sessions: SessionLifecycle,
    private readonly metrics: MetricsService,
    private readonly hostGateways: HostGateways,
    private readonly errors: ErrorTracker,
  ) {
    const routes: { [K in ClientMessageType]: Route<never> } = {
      [ClientMessageType.Ping]: route(PingData, () => ({ type: ServerMessageType.Pong })),
      [ClientMessageType.RoomJoin]: route(RoomJoinData, async (c, d) => ({
        type: ServerMessageType.RoomJoined,
        ...(await rooms.join(c, d.room, d.since)),
      })),
      [ClientMessageType.RoomLeave]: route(RoomData, async (c, d) => ({
        type: ServerMessageType.RoomLeft,
        data: await rooms.leave(c, d.room),
      })),
      [ClientMessageType.RoomMessage]: route(RoomMessageData, (c, d) =>
        rooms.message(c, d.room, d.text),
      ),
      [ClientMessageType.RoomHistory]: route(RoomHistoryData, async (c, d) => ({
        type: ServerMessageType.RoomHistory,
        data: await rooms.history(c, d.room, d.limit ?? DEFAULT_HISTORY_LIMIT, d.before),
      })),
      [ClientMessageType.Typing]: route(RoomData, (c, d) => rooms.typing(c, d.room)),
      [ClientMessageType.PresenceList]: route(PresenceListData, async (c, d) => ({
        type: ServerMessageType.PresenceList,
        data: await rooms.members(c, d.room, d.limit ?? MAX_LISTED_MEMBERS, d.after),
      })),
      [ClientMessageType.SessionRefresh]: route(SessionRefreshData, async (c, d) => ({
        type: ServerMessageType.SessionRefreshed,
        data: await sessions.refresh(c, d.token),
      })),
    };
    this.routes = new Map(Object.entries(routes) as Array<[string, Route<object>]>);
  }

  /** Called for every text frame a socket sends. */
  receive(connection: Connection, text: string): void {
    connection.tap('in', text);
    const now = Date.now();
    const verdict = connection.flood.message(now);
    switch (verdict) {
      case 'close':
        connection.close(CloseCode.PolicyViolation, CloseReason.MessageRate);
        return;
      case 'limited':
        this.metrics.received('other');
        this.metrics.error(ErrorCode.RateLimited);
        connection.send(
          errorFrame(ErrorCode.RateLimited, 'message rate exceeded; message dropped', undefined, {
            retryAfterMs: connection.flood.retryAfterMs(now),
          }),
        );
        return;
      case 'ok':
        connection.serial(() => this.handle(connection, text));
        return;
      default: {
        const unreachable: never = verdict;
        throw new Error(`unknown verdict ${String(unreachable)}`);
      }
    }
  }

  private handle(connection: Connection, text: string): void | Promise<void> {
    if (!connection.open) {
      // Queued before the close: dropped, so that nothing runs for a socket that is gone.
      return;
    }
    const parsed = parseEnvelope(text);
    if (!parsed.ok) {
      this.metrics.received('other');
      this.refuse(connection, parsed.error, parsed.id);
      return;
    }
    const { type, id, data } = parsed.message;
    this.metrics.received(type);
    const target = this.routes.get(type);
    if (target === undefined) {
      // A host application's own type (its gateway's `@SubscribeMessage`), else unknown.
      const handled = this.hostGateways.dispatch(connection, type, data, id);
      if (handled !== undefined) {
        return handled;
      }
      this.refuse(
        connection,
        new ClientError(ErrorCode.UnknownType, `unknown message type "${type}"`),
        id,
      );
      return;
    }
    const valid = validateData(target.dto, data);
    if (!valid.ok) {
      const error = new ClientError(ErrorCode.ValidationFailed, `invalid data for "${type}"`, {
        fields: valid.fields,
      });
      this.refuse(connection, error, id);
      return;
    }
    try {
      const reply = target.handle(connection, valid.value);
      if (reply instanceof Promise) {
        return reply.then(
          (value) => this.answer(connection, value, id),
          (error: unknown) => this.failed(connection, error, type, id),
        );
      }
      this.answer(connection, reply, id);
    } catch (error) {
      this.failed(connection, error, type, id);
    }
  }

  private answer(connection: Connection, reply: Reply, id: string | undefined): void {
    if (reply) {
      connection.send(serverFrame(reply.type, reply.data, id));
      reply.after?.();
    }
  }

  private failed(
    connection: Connection,
    error: unknown,
    type: string,
    id: string | undefined,
  ): void {
    if (error instanceof ConnectionClosedError) {
      // Nothing to answer: the socket is gone, and its cleanup undoes what the handler did.
      return;
    }
    if (error instanceof ClientError) {
      this.refuse(connection, error, id);
    } else if (
      error instanceof StoreUnavailableError ||
      error instanceof BroadcastUnavailableError
    ) {
      this.metrics.error(ErrorCode.Unavailable);
      connection.send(
        errorFrame(ErrorCode.Unavailable, 'temporarily unavailable; retry shortly', id, {
          retryAfterMs: UNAVAILABLE_RETRY_MS,
        }),
      );
    } else {
      this.logger.error({
        msg: 'message handler failed',
        type,
        connectionId: connection.id,
        err: error,
      });
      this.errors.capture(error, {
        component: 'message-router',
        messageType: type,
        connectionId: connection.id,
        userId: connection.session.userId,
        transport: connection.transport,
      });
      connection.close(CloseCode.InternalError, CloseReason.InternalError);
    }
  }

  /** Answers with an error frame; the tenth in a window closes the socket with 1008. */
  private refuse(connection: Connection, error: ClientError, id: string | undefined): void {
    this.metrics.error(error.code);
    connection.send(errorFrame(error.code, error.message, id, error.details));
    if (connection.flood.error(Date.now())) {
      connection.close(CloseCode.PolicyViolation, CloseReason.TooManyErrors);
    }
  }
}

function route<T extends object>(dto: new () => T, handle: Route<T>['handle']): Route<never> {
  return { dto, handle } as unknown as Route<never>;
}

type ParseResult = { ok: true; message: Envelope } | { ok: false; error: ClientError; id?: string };

/** Validates the envelope `{ type: string, id?: string (≤ 64), data?: object }`, nothing more. */
export function parseEnvelope(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: new ClientError(ErrorCode.BadJson, 'message is not valid JSON') };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      error: new ClientError(ErrorCode.BadEnvelope, 'message must be a JSON object'),
    };
  }
  const envelope = value as Record<string, unknown>;
  const usableId =
    typeof envelope.id === 'string' && envelope.id.length <= MAX_MESSAGE_ID_LENGTH
      ? envelope.id
      : undefined;
  const fail = (field: string, problem: string): ParseResult => ({
    ok: false,
    id: usableId,
    error: new ClientError(ErrorCode.BadEnvelope, problem, { fields: { [field]: [problem] } }),
  });
  for (const key of Object.keys(envelope)) {
    if (!ENVELOPE_KEYS.has(key)) {
      return fail(key, `${key} is not allowed; a message has only type, id and data`);
    }
  }
  if (
    typeof envelope.type !== 'string' ||
    envelope.type.length === 0 ||
    envelope.type.length > MAX_TYPE_LENGTH
  ) {
    return fail('type', `type must be a non-empty string of at most ${MAX_TYPE_LENGTH} characters`);
  }
  if (envelope.id !== undefined && usableId === undefined) {
    return fail('id', `id must be a string of at most ${MAX_MESSAGE_ID_LENGTH} characters`);
  }
  const data = envelope.data;
  if (data !== undefined && (typeof data !== 'object' || data === null || Array.isArray(data))) {
    return fail('data', 'data must be an object');
  }
  return {
    ok: true,
    message: {
      type: envelope.type,
      id: usableId,
      data: data as Record<string, unknown> | undefined,
    },
  };
}
