import type { MessageMappingProperties } from '@nestjs/websockets';
import type { ErrorCode } from '@switchboard/protocol';
import type { Observable } from 'rxjs';
import type { Connection } from '../../core/connection';
import { errorFrame, serverFrame } from '../../core/frames';
import type { Session } from '../../core/session';

/** What a host's message handler was bound with (per gateway, per connection). */
export interface BoundHandler {
  callback: MessageMappingProperties['callback'];
  transform: (data: unknown) => Observable<unknown>;
}

/** Joins and leaves rooms for a socket, with every check a client's own `room.join` has. */
export interface RoomDoor {
  join(socket: SwitchboardSocket, room: string): Promise<void>;
  leave(socket: SwitchboardSocket, room: string): Promise<void>;
}

/** Takes a host handler's failure that is not the client's fault (see `SwitchboardSocket.failed`). */
export interface HandlerFailures {
  failed(socket: SwitchboardSocket, error: unknown, type: string): void;
}

/**
 * An authenticated Switchboard connection, as a host application's gateway sees it: the
 * `@ConnectedSocket()` of its `@SubscribeMessage()` handlers and the argument of its
 * `handleConnection` / `handleDisconnect`.
 */
export class SwitchboardSocket {
  /** The host's handlers this connection answers, by message type. */
  readonly handlers = new Map<string, BoundHandler>();
  private readonly disconnected: Array<() => void> = [];
  /** The request being answered, for `emit` from an exception filter (see `HostGateways`). */
  static current: () => { socket: SwitchboardSocket; id?: string } | undefined = () => undefined;

  constructor(
    /** @internal */ readonly connection: Connection,
    private readonly door: RoomDoor & HandlerFailures,
  ) {}

  /** The connection's id (the `welcome`'s `connectionId`). */
  get id(): string {
    return this.connection.id;
  }

  /** The authenticated user: `id` is the token's `sub`. */
  get user(): { id: string; name: string } {
    return { id: this.connection.session.userId, name: this.connection.session.name };
  }

  /** The session behind the connection: its id, when its token expires, its `rooms` claim. */
  get session(): Readonly<Session> {
    return this.connection.session;
  }

  /** The rooms the connection is in. */
  get rooms(): string[] {
    return [...this.connection.rooms];
  }

  /** Whether the socket is still open: a handler that awaited may find it closed. */
  get open(): boolean {
    return this.connection.open;
  }

  /**
   * Joins a room for the client, with the checks of its own `room.join` (room policy, reserved
   * names, at most 50 rooms); the client is told with `room.joined`.
   * @throws a refusal, which becomes the `error` frame of the message being handled
   */
  join(room: string): Promise<void> {
    return this.door.join(this, room);
  }

  /** Leaves a room for the client; the client is told with `room.left`. */
  leave(room: string): Promise<void> {
    return this.door.leave(this, room);
  }

  /** Sends the client a frame `{ type, data, ts }` (no `id`: a handler's return value is the reply). */
  send(type: string, data?: unknown): void {
    this.connection.send(serverFrame(type, data));
  }

  /** Closes the connection with a close code of docs/protocol.md and a reason. */
  close(code: number, reason: string): void {
    this.connection.close(code, reason);
  }

  /**
   * What Nest's exception handling calls: `exception` payloads become an `error` frame answering
   * the message being handled (Switchboard's own filter sends its frames itself); any other event
   * is sent as a frame of that type.
   */
  emit(event: string, payload?: unknown): boolean {
    if (event !== 'exception') {
      this.send(event, payload);
      return true;
    }
    const message =
      typeof payload === 'object' && payload !== null && 'message' in payload
        ? String(payload.message)
        : 'refused';
    this.error('rejected', message);
    return true;
  }

  /** Answers the message being handled with an `error` frame. */
  error(code: ErrorCode, message: string, details?: Record<string, unknown>): void {
    const request = SwitchboardSocket.current();
    const id = request?.socket === this ? request.id : undefined;
    this.connection.send(errorFrame(code, message, id, details));
  }

  /**
   * @internal What Switchboard's exception filter calls when a handler of message `type` failed
   * on no fault of the client's: logged, reported, answered with `internal_error`.
   */
  failed(error: unknown, type: string): void {
    this.door.failed(this, error, type);
  }

  /** @internal Nest's `handleDisconnect` hook. */
  onDisconnect(callback: () => void): void {
    this.disconnected.push(callback);
  }

  /** @internal */
  closed(): void {
    for (const callback of this.disconnected.splice(0)) {
      callback();
    }
  }
}
