import type { ClientMessage } from '@switchboard/protocol';
import type { CloseInfo, StopInfo, TabStanding } from './link';
import type { TransportName } from './transports/transport';
import type { ReconnectingInfo } from './types';

/**
 * What the leading tab tells a tab about the shared connection: the events of one socket's life,
 * and the frames meant for that tab. A welcome frame carries the connection's `generation`, which
 * the tab's frames then carry back, so that a frame sent on an earlier connection is not sent again
 * on the next one.
 */
export type TabEvent =
  | { type: 'state'; state: 'connecting' | 'reconnecting' }
  | { type: 'frame'; text: string; generation?: number }
  | { type: 'closed'; close: CloseInfo }
  | { type: 'reconnecting'; info: ReconnectingInfo; failure: string | null }
  | { type: 'stopped'; stop: StopInfo }
  | { type: 'transport'; transport: TransportName | null };

/** What a tab may ask of the leading tab's connection besides frames. */
export type TabCommand = 'connect' | 'retry-now';

/** The messages of a tab-sharing `BroadcastChannel`. Every tab reads every message. */
export type TabMessage =
  /** From a follower: it is there (again), where it stands, and whether it wants a connection. */
  | { kind: 'hello'; from: string; standing: TabStanding; connect: boolean }
  /** From a follower: a client frame for the connection. */
  | { kind: 'send'; from: string; frame: ClientMessage; generation: number }
  | { kind: 'command'; from: string; command: TabCommand }
  /** From a follower that closed. */
  | { kind: 'bye'; from: string }
  /** From a tab that just became the leader: followers say hello to it. */
  | { kind: 'leader'; from: string }
  /** From the leader, closing: followers wait for the next one. */
  | { kind: 'resign'; from: string }
  | { kind: 'event'; from: string; to: string[]; event: TabEvent };

export function isTabMessage(data: unknown): data is TabMessage {
  const message = data as Partial<TabMessage> | null;
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof message.kind === 'string' &&
    typeof message.from === 'string'
  );
}
