import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { Injectable, Logger } from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { CLIENT_MESSAGE_TYPES, ErrorCode, ServerMessageType } from '@switchboard/protocol';
import { isObservable, type Observable } from 'rxjs';
import type { Connection } from '../../core/connection';
import { serverFrame } from '../../core/frames';
import { MAX_JSON_DEPTH } from '../../common/json-depth';
import { sanitizeJson } from '../../common/sanitize';
import { ErrorTracker } from '../../errors/error-tracker';
import { RoomsService } from '../rooms/rooms.service';
import { type HandlerFailures, type RoomDoor, SwitchboardSocket } from './switchboard-socket';
import { SwitchboardWsExceptionFilter } from './ws-exception.filter';

/** Nest's metadata keys of `@WebSocketGateway()` and `@SubscribeMessage()`. */
const GATEWAY_METADATA = 'websockets:is_gateway';
const MESSAGE_MAPPING_METADATA = 'websockets:message_mapping';
const MESSAGE_METADATA = 'message';

/** The `path` option that marks Switchboard's own gateway to its adapter. */
export const CORE_GATEWAY_PATH = '/.switchboard-core';

const BUILT_IN: ReadonlySet<string> = new Set(CLIENT_MESSAGE_TYPES);

/** The message a host handler is answering, for the exception filter's frame. */
const requests = new AsyncLocalStorage<{ socket: SwitchboardSocket; id?: string }>();
SwitchboardSocket.current = () => requests.getStore();

/** A host handler's `WsResponse`. */
function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { event?: unknown }).event === 'string' &&
    'data' in value
  );
}

/**
 * The host application's own message types (docs/nest.md, Host message types). Its
 * `@WebSocketGateway()` classes get every authenticated connection as a `SwitchboardSocket`; a
 * client message whose type is not built in goes to the `@SubscribeMessage(type)` handler, through
 * Nest's guards, interceptors, pipes and exception filters. The return value is the reply (the
 * request's `id` echoed); a refusal is an `error` frame; the socket stays open either way.
 *
 * At boot, a host gateway that subscribes a built-in type is an error, and
 * `SwitchboardWsExceptionFilter` is put behind each gateway's own filters.
 */
@Injectable()
export class HostGateways implements RoomDoor, HandlerFailures {
  private readonly logger = new Logger('SwitchboardHostGateway');
  /** What the adapter hands Nest for every host gateway: it emits `connection`. */
  readonly server = new EventEmitter();
  private readonly sockets = new Map<Connection, SwitchboardSocket>();
  /** Set by the adapter when it created Switchboard's own gateway's server. */
  coreAttached = false;

  constructor(
    discovery: DiscoveryService,
    scanner: MetadataScanner,
    private readonly rooms: RoomsService,
    private readonly errors: ErrorTracker,
  ) {
    this.server.setMaxListeners(0);
    for (const wrapper of discovery.getProviders()) {
      const type = wrapper.metatype as (new (...args: never[]) => object) | null;
      if (
        !type ||
        typeof type !== 'function' ||
        !Reflect.getMetadata(GATEWAY_METADATA, type) ||
        Reflect.getMetadata('path', type) === CORE_GATEWAY_PATH
      ) {
        continue;
      }
      this.adopt(type, scanner);
    }
  }

  /**
   * Checks a host gateway's message types and puts Switchboard's filter behind its own.
   * @throws Error naming the gateway and the type, for a built-in type
   */
  private adopt(gateway: new (...args: never[]) => object, scanner: MetadataScanner): void {
    const prototype = gateway.prototype as Record<string, unknown>;
    for (const name of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[name] as object;
      if (!Reflect.getMetadata(MESSAGE_MAPPING_METADATA, handler)) {
        continue;
      }
      const message: unknown = Reflect.getMetadata(MESSAGE_METADATA, handler);
      if (typeof message === 'string' && BUILT_IN.has(message)) {
        throw new Error(
          `${gateway.name}.${name}: @SubscribeMessage('${message}') takes over a built-in Switchboard message type; choose another type`,
        );
      }
    }
    const filters = (Reflect.getMetadata(EXCEPTION_FILTERS_METADATA, gateway) ?? []) as object[];
    if (!filters.some((filter) => filter instanceof SwitchboardWsExceptionFilter)) {
      // Filters run last-declared first: this one only sees what the gateway's own leave.
      Reflect.defineMetadata(
        EXCEPTION_FILTERS_METADATA,
        [new SwitchboardWsExceptionFilter(), ...filters],
        gateway,
      );
    }
  }

  /** A welcomed connection: the host gateways' `handleConnection`, and their handlers bound. */
  connected(connection: Connection): void {
    if (this.server.listenerCount('connection') === 0) {
      return;
    }
    const socket = new SwitchboardSocket(connection, this);
    this.sockets.set(connection, socket);
    this.server.emit('connection', socket);
  }

  /** A closed connection: the host gateways' `handleDisconnect`. */
  disconnected(connection: Connection): void {
    const socket = this.sockets.get(connection);
    if (socket !== undefined) {
      this.sockets.delete(connection);
      socket.closed();
    }
  }

  /**
   * Hands a message of a type that is not built in to the host's handler, if one is bound.
   * @returns undefined when no host handler takes `type`; else when the handler has answered
   */
  dispatch(
    connection: Connection,
    type: string,
    data: Record<string, unknown> | undefined,
    id: string | undefined,
  ): Promise<void> | undefined {
    const socket = this.sockets.get(connection);
    const handler = socket?.handlers.get(type);
    if (socket === undefined || handler === undefined) {
      return undefined;
    }
    const body = sanitizeJson(data ?? {}, MAX_JSON_DEPTH);
    if (!body.ok) {
      return requests.run({ socket, id }, () => {
        socket.error(ErrorCode.ValidationFailed, `${body.path} ${body.problem}`, {
          fields: { [body.path]: [`${body.path} ${body.problem}`] },
        });
        return Promise.resolve();
      });
    }
    return requests.run(
      { socket, id },
      () =>
        new Promise<void>((resolve) => {
          const answers: Observable<unknown> = handler.transform(
            handler.callback(body.value, type) as unknown,
          );
          if (!isObservable(answers)) {
            resolve();
            return;
          }
          answers.subscribe({
            next: (answer) => {
              if (answer === undefined || answer === null || !connection.open) {
                return;
              }
              connection.send(
                isWsResponse(answer)
                  ? serverFrame(answer.event, answer.data, id)
                  : serverFrame(type, answer, id),
              );
            },
            error: (error: unknown) => {
              this.failed(socket, error, type);
              resolve();
            },
            complete: resolve,
          });
        }),
    );
  }

  /**
   * `SwitchboardSocket.failed`: a host handler failed on no fault of the client's (a bug). Logged
   * with its stack, reported, answered with `internal_error`; the socket stays open.
   */
  failed(socket: SwitchboardSocket, error: unknown, type: string): void {
    this.logger.error({
      msg: 'host message handler failed',
      type,
      connectionId: socket.id,
      err: error,
    });
    this.errors.capture(error, {
      component: 'host-gateway',
      messageType: type,
      connectionId: socket.id,
      userId: socket.user.id,
      transport: socket.connection.transport,
    });
    socket.error(ErrorCode.InternalError, 'internal error');
  }

  /** `SwitchboardSocket.join`: the client's own `room.join`, told with `room.joined`. */
  async join(socket: SwitchboardSocket, room: string): Promise<void> {
    const { data, after } = await this.rooms.join(socket.connection, room);
    socket.connection.send(serverFrame(ServerMessageType.RoomJoined, data));
    after?.();
  }

  /** `SwitchboardSocket.leave`: the client's own `room.leave`, told with `room.left`. */
  async leave(socket: SwitchboardSocket, room: string): Promise<void> {
    const data = await this.rooms.leave(socket.connection, room);
    socket.connection.send(serverFrame(ServerMessageType.RoomLeft, data));
  }
}
