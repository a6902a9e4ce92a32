import { WebSocket } from 'ws';
import { CloseCode } from '@app/protocol';
import type { Session } from '../auth/session';

/** One authenticated socket held by this instance. */
export class Connection {
  /** Set by the heartbeat when it pings, cleared by the pong. */
  awaitingPong = false;
  readonly timers: NodeJS.Timeout[] = [];
  /** Rooms joined; the hub keeps the reverse index. */
  readonly rooms = new Set<string>();

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    public session: Session,
    readonly ip: string,
    readonly connectedAt: number,
    private readonly sendBufferMaxBytes: number,
  ) {}

  get userId(): string {
    return this.session.userId;
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends an already-serialized frame. A client whose unsent bytes would pass
   * `WS_SEND_BUFFER_MAX_BYTES` is closed with `4008` instead, so it cannot grow our memory.
   */
  send(frame: string): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    if (this.socket.bufferedAmount + frame.length > this.sendBufferMaxBytes) {
      this.close(CloseCode.SlowConsumer, 'slow consumer');
      return false;
    }
    this.socket.send(frame);
    return true;
  }

  close(code: number, reason: string): void {
    const state = this.socket.readyState;
    if (state === WebSocket.OPEN || state === WebSocket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }

  clearTimers(): void {
    for (const timer of this.timers) {
      clearTimeout(timer);
    }
    this.timers.length = 0;
  }
}
