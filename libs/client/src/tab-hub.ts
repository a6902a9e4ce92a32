import {
  type ClientMessage,
  ClientMessageType,
  type PresenceCountData,
  type PresenceDiffData,
  type RoomData,
  type RoomJoinedData,
  type RoomJoinRequest,
  type ServerMessage,
  ServerMessageType,
  type StreamPosition,
  type WelcomeData,
} from '@switchboard/protocol';
import { Connection, type ConnectionEnv } from './connection';
import type { CloseInfo, LinkHandler, StopInfo, TabStanding } from './link';
import { RoomPresence } from './room-presence';
import type { TabCommand, TabEvent } from './tab-messages';
import type { TransportName } from './transports/transport';
import type { ClientOptions, ReconnectingInfo } from './types';

/** Publications a stream keeps, to answer a tab that is behind without asking the server. */
const KEPT_PUBLICATIONS = 100;

/** One publication of a stream, as the server sent it. */
interface Publication {
  offset: number;
  text: string;
  message: ServerMessage;
}

/** What a tab is told about a stream it asks for: recovered from `since`, or not. */
interface Answer {
  recovered?: boolean;
  missed?: number;
  replays: Publication[];
}

/**
 * A stream (the user's own, or a room) as the leader's connection follows it: where it stands,
 * the last publications, and the tabs that get its frames on this connection.
 */
class HubStream {
  position: StreamPosition | undefined;
  /** The latest publications, contiguous and in offset order, ending at `position`. */
  kept: Publication[] = [];
  /** Publications of the last recovery still to come (they come before any newer one). */
  replaysLeft = 0;
  /** The tabs answered on this connection: they get the stream's frames. */
  readonly receivers = new Set<string>();

  /** Starts over from a `welcome` or `room.joined`: recovered, the missed publications follow. */
  restart(answer: { position?: StreamPosition; recovered?: boolean; missed?: number }): void {
    if (answer.position === undefined) {
      this.position = undefined; // history is off on the server
      this.kept = [];
      this.replaysLeft = 0;
    } else if (answer.recovered === true) {
      this.position = { ...answer.position };
      this.replaysLeft = answer.missed ?? 0;
    } else {
      this.position = { ...answer.position };
      this.kept = [];
      this.replaysLeft = 0;
    }
  }

  /** Takes in a publication: a replay of the recovery, or a new one. */
  record(publication: Publication): void {
    const last = this.kept[this.kept.length - 1];
    if (this.replaysLeft > 0) {
      this.replaysLeft -= 1;
    } else if (this.position === undefined || publication.offset <= this.position.offset) {
      // The stream started over (its history was lost) while the socket stayed open: its epoch
      // is unknown from here on, as the client's own tracking has it.
      this.position = { epoch: '', offset: publication.offset };
      this.kept = [];
    } else {
      this.position.offset = publication.offset;
    }
    if (last === undefined || publication.offset > last.offset) {
      this.kept.push(publication);
      if (this.kept.length > KEPT_PUBLICATIONS) {
        this.kept.shift();
      }
    }
  }

  /**
   * What a tab that stands at `since` is told: nothing to recover (no `since`), recovered with
   * the publications it lacks when they are all kept here, else not recovered (it reloads).
   */
  answer(since: StreamPosition | undefined): Answer {
    const position = this.position;
    if (since === undefined || position === undefined) {
      return { replays: [] };
    }
    if (!since.epoch || since.epoch !== position.epoch) {
      return { recovered: false, replays: [] };
    }
    if (since.offset >= position.offset) {
      return { recovered: true, missed: 0, replays: [] };
    }
    const first = this.kept[0];
    const last = this.kept[this.kept.length - 1];
    if (first === undefined || first.offset > since.offset + 1 || last.offset !== position.offset) {
      return { recovered: false, replays: [] };
    }
    const replays = this.kept.filter((publication) => publication.offset > since.offset);
    return { recovered: true, missed: replays.length, replays };
  }
}

/** A tab's join waiting for the room's own `room.joined` (and its recovery) on this connection. */
interface WaitingJoin {
  tab: string;
  id?: string;
  since?: StreamPosition;
}

class HubRoom extends HubStream {
  /** The tabs that want the room: the hub stays in it while there is one. */
  readonly wanted = new Set<string>();
  phase: 'idle' | 'joining' | 'joined' | 'leaving' = 'idle';
  waiting: WaitingJoin[] = [];
  /** Leaves of tabs whose join was still waiting: answered right after it. */
  deferred: Array<{ tab: string; id?: string }> = [];
  presence: RoomPresence | null = null;

  constructor(readonly name: string) {
    super();
  }
}

/** A tab the hub serves. */
interface HubTab {
  id: string;
  /** Where it stood in its own stream when last known (its hello, or the last connection). */
  own?: StreamPosition;
  standing: TabStanding;
}

/** Where a request the hub sent on a tab's behalf (or its own) is answered. */
type Route =
  | { kind: 'join'; room: string }
  | { kind: 'leave'; room: string; tab?: string; id?: string }
  | { kind: 'pass'; tab: string; id: string };

/** How the hub reaches the tabs: its own directly, the others through the channel. */
export interface HubOutlet {
  /** The leading tab's own client. */
  local: { id: string; handler: LinkHandler };
  /** Posts one event to these followers. */
  post(to: string[], event: TabEvent): void;
  /** Calls `gone` once the follower's tab has closed (its tab lock is free). */
  watch(tab: string, gone: () => void): void;
}

/**
 * The leading tab's side of a shared connection: it holds the `Connection` and serves every tab
 * of the browser through it, each with its own rooms, as if each had a socket of its own.
 *
 * - Requests are sent with ids of the hub's own and the reply goes to the tab that asked.
 * - A room is joined once, while any tab wants it, and left when none does. A tab that joins a
 *   room already joined is answered here: the members the hub keeps, and recovery from the
 *   publications it keeps (the last 100 of each stream), else `recovered: false`.
 * - Frames go only to the tabs that want them: a room's to the tabs answered in it, the user's own
 *   stream and everything else to every tab welcomed on this connection.
 * - After a reconnect (or when this tab takes over from a leader that closed), it connects and
 *   joins from the lowest position any tab holds; each tab is then answered from its own
 *   position, so each gets what it lacks, once.
 */
export class TabHub implements LinkHandler {
  readonly connection: Connection;
  private readonly tabs = new Map<string, HubTab>();
  private readonly own = new HubStream();
  private readonly rooms = new Map<string, HubRoom>();
  private readonly routes = new Map<string, Route>();
  private welcome: WelcomeData | null = null;
  private lastStop: StopInfo | null = null;
  /** Counts welcomes: a tab's frame from an earlier connection is dropped. */
  private generation = 0;
  private seq = 0;
  private started = false;
  /** A tab asked for a connection while the hub was not yet started. */
  private connectAsked = false;
  private detached = false;

  constructor(
    options: ClientOptions,
    env: ConnectionEnv,
    private readonly outlet: HubOutlet,
  ) {
    this.connection = new Connection(options, env, this, () => this.ownSince());
    this.tabs.set(outlet.local.id, { id: outlet.local.id, standing: { rooms: [] } });
  }

  /** Starts serving: connects when this tab (or a tab that said hello) wants a connection. */
  start(local: TabStanding, connect: boolean): void {
    const tab = this.tabs.get(this.outlet.local.id)!;
    tab.standing = local;
    tab.own = local.own;
    this.started = true;
    if (connect || this.connectAsked) {
      this.connection.connect();
    }
  }

  /** The tabs that said hello, the leader's own included. */
  hasTabs(ids: string[]): boolean {
    return ids.every((id) => this.tabs.has(id));
  }

  /** A follower says hello: it gets the connection's state, and its welcome when open. */
  attach(id: string, standing: TabStanding, connect: boolean): void {
    const known = this.tabs.get(id);
    if (known === undefined) {
      this.tabs.set(id, { id, own: standing.own, standing });
      this.outlet.watch(id, () => this.detach(id));
    } else if (!this.own.receivers.has(id)) {
      known.standing = standing;
      known.own = standing.own;
    }
    if (!this.started) {
      this.connectAsked ||= connect;
      return;
    }
    this.sync(id, connect);
  }

  /** A follower closed or its tab is gone: its rooms are left when no other tab wants them. */
  detach(id: string): void {
    if (!this.tabs.delete(id)) {
      return;
    }
    this.own.receivers.delete(id);
    for (const [route, to] of this.routes) {
      if (to.kind === 'pass' && to.tab === id) {
        this.routes.delete(route); // its reply has no one to go to
      }
    }
    for (const room of [...this.rooms.values()]) {
      room.wanted.delete(id);
      room.receivers.delete(id);
      room.waiting = room.waiting.filter((join) => join.tab !== id);
      room.deferred = room.deferred.filter((leave) => leave.tab !== id);
      this.leaveIfUnwanted(room);
    }
  }

  /** A frame from a tab (the leader's own, or a follower's of this `generation`). */
  send(tab: string, frame: ClientMessage, generation = this.generation): void {
    if (this.connection.state !== 'open' || generation !== this.generation || !this.tabs.has(tab)) {
      return; // sent on a connection that closed since: the tab's request failed with it
    }
    const data = frame.data as Partial<RoomJoinRequest> | undefined;
    if (frame.type === ClientMessageType.RoomJoin && typeof data?.room === 'string') {
      this.join(tab, frame.id, data.room, data.since);
    } else if (frame.type === ClientMessageType.RoomLeave && typeof data?.room === 'string') {
      this.leave(tab, frame.id, data.room);
    } else if (frame.id === undefined) {
      this.connection.send(frame);
    } else {
      const id = this.nextId();
      this.routes.set(id, { kind: 'pass', tab, id: frame.id });
      this.connection.send({ ...frame, id });
    }
  }

  command(command: TabCommand): void {
    if (command === 'connect') {
      if (this.started) {
        this.connection.connect();
      } else {
        this.connectAsked = true;
      }
    } else {
      this.connection.retryNow();
    }
  }

  /** The leading tab closes: the connection goes without a word to the followers. */
  resign(): void {
    this.detached = true;
    this.connection.close();
  }

  /** Where the connection recovers the user's own stream from: the lowest position of any tab. */
  ownSince(): StreamPosition | undefined {
    if (this.own.position?.epoch) {
      return this.own.position;
    }
    return lowest([...this.tabs.values()].map((tab) => tab.own));
  }

  // The connection's events (LinkHandler).

  state(state: 'connecting' | 'reconnecting'): void {
    this.toAll({ type: 'state', state });
  }

  transport(transport: TransportName | null): void {
    this.toAll({ type: 'transport', transport });
  }

  reconnecting(info: ReconnectingInfo, failure: string | null): void {
    this.toAll({ type: 'reconnecting', info, failure });
  }

  stopped(stop: StopInfo): void {
    this.lastStop = stop;
    this.toAll({ type: 'stopped', stop });
  }

  closed(close: CloseInfo): void {
    for (const id of this.own.receivers) {
      const tab = this.tabs.get(id);
      if (tab !== undefined) {
        tab.own = this.own.position && { ...this.own.position };
      }
    }
    this.own.receivers.clear();
    this.own.replaysLeft = 0;
    for (const room of [...this.rooms.values()]) {
      room.receivers.clear();
      room.wanted.clear();
      room.waiting = [];
      room.deferred = [];
      room.replaysLeft = 0;
      room.presence = null;
      if (room.phase === 'leaving') {
        this.rooms.delete(room.name);
      } else {
        room.phase = 'idle';
      }
    }
    this.routes.clear();
    this.toAll({ type: 'closed', close });
  }

  frame(message: ServerMessage, text = JSON.stringify(message)): void {
    if (message.type === ServerMessageType.Welcome) {
      this.welcomed(message);
    } else if (message.id !== undefined) {
      this.replied(message);
    } else if (message.offset !== undefined) {
      this.published(message, text);
    } else {
      const room = this.roomOf(message);
      if (room === undefined) {
        this.deliver(this.own.receivers, message, text);
      } else {
        this.keepPresence(room, message);
        this.deliver(room.receivers, message, text);
      }
    }
  }

  private welcomed(message: ServerMessage): void {
    const welcome = { ...(message.data as WelcomeData) };
    delete welcome.sendToken;
    this.own.restart(welcome);
    delete welcome.recovered;
    delete welcome.missed;
    this.welcome = welcome;
    this.lastStop = null;
    this.generation += 1;
    if (this.own.replaysLeft === 0) {
      this.greetAll();
    }
  }

  private greetAll(): void {
    for (const id of this.tabs.keys()) {
      if (!this.own.receivers.has(id)) {
        this.greet(id);
      }
    }
  }

  /** Gives a tab its welcome: the connection's, with the recovery of the tab's own stream. */
  private greet(id: string): void {
    const tab = this.tabs.get(id);
    if (tab === undefined || this.welcome === null) {
      return;
    }
    const { replays, ...recovery } = this.own.answer(tab.own);
    const position = this.own.position && { ...this.own.position };
    const data: WelcomeData = { ...this.welcome, ...recovery };
    if (position === undefined) {
      delete data.position;
    } else {
      data.position = position;
    }
    this.own.receivers.add(id);
    tab.own = position;
    this.deliverNew([id], { type: ServerMessageType.Welcome, data, ts: Date.now() }, true);
    for (const replay of replays) {
      this.deliver([id], replay.message, replay.text);
    }
  }

  private published(message: ServerMessage, text: string): void {
    const stream = message.room === undefined ? this.own : this.rooms.get(message.room);
    if (stream === undefined) {
      this.deliver(this.own.receivers, message, text); // a room the server joined this socket to
      return;
    }
    const replay = stream.replaysLeft > 0;
    stream.record({ offset: message.offset!, text, message });
    this.deliver(stream.receivers, message, text);
    if (replay && stream.replaysLeft === 0) {
      if (stream === this.own) {
        this.greetAll();
      } else {
        this.answerWaiting(stream as HubRoom);
      }
    }
  }

  private replied(message: ServerMessage): void {
    const route = this.routes.get(message.id!);
    if (route === undefined) {
      return; // a reply on an earlier connection's behalf
    }
    this.routes.delete(message.id!);
    switch (route.kind) {
      case 'pass':
        this.deliverNew([route.tab], { ...message, id: route.id });
        return;
      case 'join':
        this.joinReplied(route.room, message);
        return;
      case 'leave':
        this.leaveReplied(route, message);
        return;
      default: {
        const unreachable: never = route;
        throw new Error(`unknown route ${JSON.stringify(unreachable)}`);
      }
    }
  }

  private join(tab: string, id: string | undefined, name: string, since?: StreamPosition): void {
    let room = this.rooms.get(name);
    if (room === undefined) {
      room = new HubRoom(name);
      this.rooms.set(name, room);
    }
    room.wanted.add(tab);
    const join: WaitingJoin = { tab, id, since };
    if (room.phase === 'joined' && room.replaysLeft === 0) {
      this.answerJoin(room, join);
      return;
    }
    room.waiting.push(join);
    if (room.phase === 'idle') {
      this.joinServer(room);
    }
  }

  /** Joins the room on the server, from the lowest position the waiting tabs hold. */
  private joinServer(room: HubRoom): void {
    const since = room.position?.epoch
      ? room.position
      : lowest([
          ...room.waiting.map((join) => join.since),
          ...[...this.tabs.values()].map(
            (tab) => tab.standing.rooms.find((entry) => entry.room === room.name)?.since,
          ),
        ]);
    const id = this.nextId();
    this.routes.set(id, { kind: 'join', room: room.name });
    room.phase = 'joining';
    this.connection.send({
      type: ClientMessageType.RoomJoin,
      id,
      data: since === undefined ? { room: room.name } : { room: room.name, since: { ...since } },
    });
  }

  private joinReplied(name: string, message: ServerMessage): void {
    const room = this.rooms.get(name);
    if (room === undefined) {
      return;
    }
    if (message.type === ServerMessageType.Error) {
      room.phase = 'idle';
      const waiting = room.waiting;
      room.waiting = [];
      for (const join of waiting) {
        room.wanted.delete(join.tab);
        this.deliverNew([join.tab], { ...message, id: join.id });
      }
      this.answerDeferred(room);
      if (room.wanted.size === 0) {
        this.rooms.delete(name);
      }
      return;
    }
    const joined = message.data as RoomJoinedData;
    room.phase = 'joined';
    room.presence = new RoomPresence(joined);
    room.restart(joined);
    if (room.replaysLeft === 0) {
      this.answerWaiting(room);
    }
  }

  private answerWaiting(room: HubRoom): void {
    const waiting = room.waiting;
    room.waiting = [];
    for (const join of waiting) {
      this.answerJoin(room, join);
    }
    this.answerDeferred(room);
    this.leaveIfUnwanted(room);
  }

  /** A tab's `room.joined`: the members the hub keeps, and the recovery from the tab's position. */
  private answerJoin(room: HubRoom, join: WaitingJoin): void {
    const { replays, ...recovery } = room.answer(join.since);
    const data: RoomJoinedData = {
      room: room.name,
      members: room.presence?.members() ?? [],
      count: room.presence?.count ?? 0,
      ...(room.position === undefined ? {} : { position: { ...room.position } }),
      ...recovery,
    };
    room.receivers.add(join.tab);
    this.deliverNew([join.tab], {
      type: ServerMessageType.RoomJoined,
      ...(join.id === undefined ? {} : { id: join.id }),
      data,
      ts: Date.now(),
    });
    for (const replay of replays) {
      this.deliver([join.tab], replay.message, replay.text);
    }
  }

  private leave(tab: string, id: string | undefined, name: string): void {
    const room = this.rooms.get(name);
    if (room === undefined || !room.wanted.has(tab)) {
      const route = this.nextId();
      this.routes.set(route, { kind: 'leave', room: name, tab, id });
      this.connection.send({ type: ClientMessageType.RoomLeave, id: route, data: { room: name } });
      return;
    }
    if (room.waiting.some((join) => join.tab === tab)) {
      room.deferred.push({ tab, id }); // after its join is answered, in the order it asked
      return;
    }
    room.wanted.delete(tab);
    room.receivers.delete(tab);
    if (room.wanted.size === 0 && room.phase === 'joined') {
      this.leaveServer(room, tab, id);
    } else {
      this.answerLeave(tab, id, name);
    }
  }

  private answerDeferred(room: HubRoom): void {
    const deferred = room.deferred;
    room.deferred = [];
    for (const { tab, id } of deferred) {
      room.wanted.delete(tab);
      room.receivers.delete(tab);
      if (room.wanted.size === 0 && room.phase === 'joined') {
        this.leaveServer(room, tab, id);
      } else {
        this.answerLeave(tab, id, room.name);
      }
    }
  }

  private answerLeave(tab: string, id: string | undefined, room: string): void {
    const left: RoomData = { room };
    this.deliverNew([tab], {
      type: ServerMessageType.RoomLeft,
      ...(id === undefined ? {} : { id }),
      data: left,
      ts: Date.now(),
    });
  }

  /** Leaves a joined room that no tab wants any more (its last tab closed, say). */
  private leaveIfUnwanted(room: HubRoom): void {
    if (room.wanted.size === 0 && room.phase === 'joined' && room.waiting.length === 0) {
      this.leaveServer(room);
    } else if (room.wanted.size === 0 && room.phase === 'idle') {
      this.rooms.delete(room.name);
    }
  }

  private leaveServer(room: HubRoom, tab?: string, id?: string): void {
    const route = this.nextId();
    this.routes.set(route, { kind: 'leave', room: room.name, tab, id });
    room.phase = 'leaving';
    room.receivers.clear();
    room.presence = null;
    this.connection.send({
      type: ClientMessageType.RoomLeave,
      id: route,
      data: { room: room.name },
    });
  }

  private leaveReplied(route: Extract<Route, { kind: 'leave' }>, message: ServerMessage): void {
    if (route.tab !== undefined) {
      this.deliverNew([route.tab], { ...message, id: route.id });
    }
    const room = this.rooms.get(route.room);
    if (room === undefined || room.phase !== 'leaving') {
      return;
    }
    room.phase = 'idle';
    if (room.waiting.length > 0) {
      this.joinServer(room); // a tab joined again while the hub was leaving
    } else {
      this.rooms.delete(room.name);
    }
  }

  /** The room of a presence, typing or membership frame, when the hub follows that room. */
  private roomOf(message: ServerMessage): HubRoom | undefined {
    switch (message.type) {
      case ServerMessageType.PresenceDiff:
      case ServerMessageType.PresenceCount:
      case ServerMessageType.Typing:
      case ServerMessageType.RoomLeft:
      case ServerMessageType.RoomJoined:
        return this.rooms.get((message.data as Partial<RoomData> | undefined)?.room ?? '');
      default:
        return undefined;
    }
  }

  private keepPresence(room: HubRoom, message: ServerMessage): void {
    if (message.type === ServerMessageType.PresenceDiff && room.presence !== null) {
      room.presence.apply(message.data as PresenceDiffData);
    } else if (message.type === ServerMessageType.PresenceCount && room.presence !== null) {
      room.presence.count = (message.data as PresenceCountData).count;
    } else if (message.type === ServerMessageType.RoomLeft) {
      room.phase = 'idle'; // the server took this socket out of the room
      room.presence = null;
    } else if (message.type === ServerMessageType.RoomJoined) {
      room.presence = new RoomPresence(message.data as RoomJoinedData);
    }
  }

  /** Sends a tab its state when it says hello; a tab that wants a connection revives a stopped one. */
  private sync(id: string, connect: boolean): void {
    const state = this.connection.state;
    if (this.connection.transport !== null) {
      this.deliverEvent([id], { type: 'transport', transport: this.connection.transport });
    }
    if (state === 'open') {
      if (this.own.replaysLeft === 0 && !this.own.receivers.has(id)) {
        this.greet(id);
      }
    } else if (state === 'connecting' || state === 'reconnecting') {
      this.deliverEvent([id], { type: 'state', state });
      const waiting = this.connection.waiting;
      if (waiting !== null) {
        this.deliverEvent([id], { type: 'reconnecting', ...waiting });
      }
    } else if (connect) {
      this.connection.connect();
    } else if (this.lastStop !== null) {
      this.deliverEvent([id], { type: 'stopped', stop: this.lastStop });
    }
  }

  private nextId(): string {
    this.seq += 1;
    return `t${this.seq}`;
  }

  private toAll(event: TabEvent): void {
    this.deliverEvent([...this.tabs.keys()], event);
  }

  /** A frame the hub made (a reply with the tab's own id, a tab's welcome or answer). */
  private deliverNew(to: string[], message: ServerMessage, welcome = false): void {
    const text = JSON.stringify(message);
    if (welcome) {
      this.deliverEvent(to, { type: 'frame', text, generation: this.generation }, message);
    } else {
      this.deliver(to, message, text);
    }
  }

  private deliver(to: Iterable<string>, message: ServerMessage, text: string): void {
    this.deliverEvent([...to], { type: 'frame', text }, message);
  }

  /** One event to these tabs: to this tab's own client directly, to the others in one post. */
  private deliverEvent(to: string[], event: TabEvent, message?: ServerMessage): void {
    if (this.detached || to.length === 0) {
      return;
    }
    const local = this.outlet.local;
    const remote = to.filter((id) => id !== local.id);
    if (remote.length > 0) {
      this.outlet.post(remote, event);
    }
    if (remote.length < to.length) {
      dispatch(local.handler, event, message);
    }
  }
}

/** Hands one event to a tab's client. */
export function dispatch(handler: LinkHandler, event: TabEvent, message?: ServerMessage): void {
  switch (event.type) {
    case 'state':
      handler.state(event.state);
      return;
    case 'frame':
      handler.frame(message ?? (JSON.parse(event.text) as ServerMessage), event.text);
      return;
    case 'closed':
      handler.closed(event.close);
      return;
    case 'reconnecting':
      handler.reconnecting(event.info, event.failure);
      return;
    case 'stopped':
      handler.stopped(event.stop);
      return;
    case 'transport':
      handler.transport(event.transport);
      return;
    default: {
      const unreachable: never = event;
      throw new Error(`unknown tab event ${JSON.stringify(unreachable)}`);
    }
  }
}

/**
 * The lowest of some positions in one stream: those of the epoch the first known position has
 * (a tab on another epoch is answered `recovered: false` and reloads).
 */
function lowest(positions: Array<StreamPosition | undefined>): StreamPosition | undefined {
  const known = positions.filter((position): position is StreamPosition => !!position?.epoch);
  if (known.length === 0) {
    return undefined;
  }
  const epoch = known[0].epoch;
  const offset = Math.min(
    ...known.filter((position) => position.epoch === epoch).map((p) => p.offset),
  );
  return { epoch, offset };
}
