import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import {
  MAX_LISTED_MEMBERS,
  type PresenceCountData,
  type PresenceDiffData,
  ServerMessageType,
  type TypingData,
  type UserInfo,
} from '@switchboard/protocol';
import { inBatches } from '../../common/batches';
import { AppConfig } from '../../config/app-config';
import { serverFrame } from '../../core/frames';
import { Hub } from '../../core/hub';
import { Node } from '../../core/node';
import { type MembersPage, PresenceStore } from './presence-store.interface';

/** What happened in one room during one batch. */
interface Batch {
  /** Users whose presence changed (joined or left: the store says which, when it is told). */
  touched: Set<string>;
  /** Users who typed, by id, with their names. */
  typing: Map<string, string>;
  /**
   * The batches of other instances may have been lost (the bus reconnected): tell the room as it
   * stands to everyone it was told to, not only what changed.
   */
  resync?: boolean;
}

/** What one instance sends the others for a room: `u` the touched user ids, `t` [id, name] pairs. */
interface BatchMessage {
  u: string[];
  t: Array<[string, string]>;
}

/** Rooms told at once in a flush (one presence-store call each). */
const TELL_CONCURRENCY = 50;

/**
 * Presence and typing notices, batched (`PRESENCE_BATCH_MS`): n joins into a room cost each member
 * one frame per batch, not n frames.
 *
 * Every batch, for each room:
 * 1. the changes made on this instance (joins, leaves, purged members, typing) go to the other
 *    instances with members in the room, as one bus message;
 * 2. the changes made here and those received from the others are told to this instance's members
 *    of the room: the store is asked which of the touched users are present now and how many
 *    users the room has (one call), and the answer becomes one `presence.diff` (or, above
 *    `PRESENCE_DIFF_MAX_MEMBERS`, one `presence.count`) and one `typing`, each serialized once.
 *
 * Asking the store instead of replaying the changes makes every diff right whatever order the
 * instances' batches arrive in: a diff says how things stand, so the last one a member receives
 * after a change is exact. A batch that cannot be told (Redis out of reach) is kept for the next.
 * Batches lost on the bus (it reconnected) are made good by a resync: each room is told again,
 * for every user this instance has named to its members (`named`) and its first page.
 */
@Injectable()
export class PresenceBatches implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(PresenceBatches.name);
  private readonly batchMs: number;
  private readonly diffMaxMembers: number;
  /** Changes made on this instance since the last flush, to send to the other instances. */
  private made = new Map<string, Batch>();
  /** Changes to tell this instance's members at the next flush (made here, or received). */
  private toTell = new Map<string, Batch>();
  /**
   * When each room's last presence frame went out (after its `ts`): the next leaves a whole batch
   * later at the earliest, however late the store answered or the timer fired, so that a member
   * gets at most one presence frame in any `PRESENCE_BATCH_MS`.
   */
  private readonly toldAt = new Map<string, number>();
  /** Per room, the presence notices waiting for their turn, and the timer that sends the next. */
  private readonly outboxes = new Map<string, Outbox>();
  /** The last count seen of each room with local members. */
  private readonly counts = new Map<string, number>();
  /**
   * Per room with local members and diffs (not above `PRESENCE_DIFF_MAX_MEMBERS`): every user this
   * instance has named to its members, `present` or gone since, so that a resync can tell how each
   * stands now: one named gone on a store that had lost its data is named again once written back,
   * even if the batch that said so was lost on the bus.
   */
  private readonly named = new Map<string, Map<string, boolean>>();
  /** First pages of large rooms read during this batch, for the `room.joined` replies. */
  private readonly firstPages = new Map<string, Promise<MembersPage>>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private flushing = false;

  constructor(
    private readonly hub: Hub,
    private readonly node: Node,
    @Inject(PresenceStore) private readonly store: PresenceStore,
    config: AppConfig,
  ) {
    this.batchMs = config.presence.batchMs;
    this.diffMaxMembers = config.presence.diffMaxMembers;
  }

  onModuleInit(): void {
    this.node.onBatch((room, payload) => this.received(room, payload));
    this.node.onResubscribed(() => {
      for (const room of this.hub.rooms()) {
        merge(this.toTell, room, { touched: new Set(), typing: new Map(), resync: true });
      }
    });
    this.timer = setInterval(() => void this.flush(), this.batchMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
    this.outboxes.forEach((outbox) => clearTimeout(outbox.timer));
    this.outboxes.clear();
  }

  /** A user's presence in the room changed (first connection in, or last one out). */
  changed(room: string, userId: string): void {
    batchOf(this.made, room).touched.add(userId);
  }

  /** The room's count as a join or leave on this instance found it. */
  counted(room: string, count: number): void {
    this.counts.set(room, count);
  }

  /** A user typed in the room; not told in rooms above `PRESENCE_DIFF_MAX_MEMBERS`. */
  typed(room: string, user: UserInfo): void {
    if (this.large(this.counts.get(room) ?? 0)) {
      return;
    }
    batchOf(this.made, room).typing.set(user.id, user.name);
  }

  /** The room has no local member any more. */
  forget(room: string): void {
    this.counts.delete(room);
    this.toldAt.delete(room);
    clearTimeout(this.outboxes.get(room)?.timer);
    this.outboxes.delete(room);
    this.named.delete(room);
    this.firstPages.delete(room);
  }

  /**
   * The first members of a room of `count` users, for a `room.joined` reply. A large room's first
   * page is read once per batch and shared by the joins of that batch: a storm of joins into one
   * room does not read (and send) the same 100 members thousands of times, and whatever changed
   * since it was read reaches the joiner in the next `presence.diff`.
   */
  async firstPage(room: string, count: number): Promise<MembersPage> {
    let page: MembersPage;
    if (count <= MAX_LISTED_MEMBERS) {
      page = await this.store.page(room, MAX_LISTED_MEMBERS);
    } else {
      let shared = this.firstPages.get(room);
      if (shared === undefined) {
        shared = this.store.page(room, MAX_LISTED_MEMBERS);
        this.firstPages.set(room, shared);
        shared.catch(() => this.firstPages.delete(room));
      }
      page = { ...(await shared), count };
    }
    this.name(room, page.members, [], page.count);
    return page;
  }

  /** Sends this batch's changes to the other instances and tells the local members. */
  async flush(): Promise<void> {
    if (this.flushing) {
      return; // the last flush is still telling: this batch joins the next
    }
    this.flushing = true;
    try {
      this.firstPages.clear();
      const made = this.made;
      this.made = new Map();
      const sent = [...made].map(([room, batch]) => this.send(room, batch));
      for (const [room, batch] of made) {
        merge(this.toTell, room, batch);
      }
      const toTell = this.toTell;
      this.toTell = new Map();
      await inBatches(toTell, TELL_CONCURRENCY, ([room, batch]) => this.tell(room, batch));
      await Promise.all(sent);
    } finally {
      this.flushing = false;
    }
  }

  private async send(room: string, batch: Batch): Promise<void> {
    const message: BatchMessage = { u: [...batch.touched], t: [...batch.typing] };
    try {
      await this.node.publishBatch(room, JSON.stringify(message));
    } catch (error) {
      // The bus is down: the presence changes go again with the next batch (typing is stale).
      if (batch.touched.size > 0) {
        merge(this.made, room, { touched: batch.touched, typing: new Map() });
      }
      this.logger.warn({ msg: 'presence batch not sent; sent with the next', room, err: error });
    }
  }

  private received(room: string, payload: string): void {
    let message: BatchMessage;
    try {
      message = JSON.parse(payload) as BatchMessage;
    } catch (error) {
      this.logger.warn({ msg: 'unreadable presence batch dropped', room, err: error });
      return;
    }
    merge(this.toTell, room, { touched: new Set(message.u), typing: new Map(message.t) });
  }

  private async tell(room: string, batch: Batch): Promise<void> {
    if (this.hub.ofRoom(room).size === 0) {
      return;
    }
    let count = this.counts.get(room);
    try {
      if (batch.resync === true) {
        count = await this.tellPresence(room, await this.resyncTouched(room, batch), count, true);
      } else if (batch.touched.size > 0) {
        count = await this.tellPresence(room, batch.touched, count, false);
      }
      if (batch.typing.size > 0) {
        count ??= await this.store.count(room);
        if (!this.large(count)) {
          const users = [...batch.typing].map(([id, name]) => ({ id, name }));
          const data: TypingData = { room, users };
          this.node.deliverToRoom(room, serverFrame(ServerMessageType.Typing, data));
        }
      }
    } catch (error) {
      // Redis is out of reach: the presence changes are told with a later batch.
      merge(this.toTell, room, { touched: batch.touched, typing: new Map(), resync: batch.resync });
      this.logger.warn({ msg: 'presence batch not told yet', room, err: error });
      return;
    }
    if (count !== undefined && this.hub.ofRoom(room).size > 0) {
      this.counts.set(room, count);
    }
  }

  /**
   * Tells the room's local members how the touched users stand; answers the count. A resync names
   * as joined only those not named before (the others know them already).
   */
  private async tellPresence(
    room: string,
    touched: Set<string>,
    known: number | undefined,
    resync: boolean,
  ): Promise<number> {
    if (known !== undefined && this.large(known)) {
      const count = await this.store.count(room);
      if (this.large(count)) {
        this.tellCount(room, count);
        return count;
      }
    }
    const { present, count } = await this.store.check(room, [...touched]);
    if (this.large(count)) {
      this.tellCount(room, count);
      return count;
    }
    const presentIds = new Set(present.map((user) => user.id));
    const left = [...touched].filter((id) => !presentIds.has(id));
    const named = this.named.get(room);
    const joined = resync ? present.filter((user) => named?.get(user.id) !== true) : present;
    const data: PresenceDiffData = { room, joined, left, count };
    this.pace(room, { type: ServerMessageType.PresenceDiff, data });
    this.name(room, joined, left, count);
    return count;
  }

  private tellCount(room: string, count: number): void {
    const data: PresenceCountData = { room, count };
    this.pace(room, { type: ServerMessageType.PresenceCount, data });
    this.named.delete(room); // a large room's members hear counts only
  }

  /** Everyone this instance named in the room, and its first page: a resync's touched users. */
  private async resyncTouched(room: string, batch: Batch): Promise<Set<string>> {
    const touched = new Set([...batch.touched, ...(this.named.get(room)?.keys() ?? [])]);
    const { members } = await this.store.page(room, MAX_LISTED_MEMBERS);
    members.forEach((user) => touched.add(user.id));
    return touched;
  }

  /** Keeps track of whom the room's local members were told about (rooms with diffs only). */
  private name(
    room: string,
    joined: readonly UserInfo[],
    left: readonly string[],
    count: number,
  ): void {
    if (this.large(count) || this.hub.ofRoom(room).size === 0) {
      this.named.delete(room);
      return;
    }
    let named = this.named.get(room);
    if (named === undefined) {
      named = new Map();
      this.named.set(room, named);
    }
    joined.forEach((user) => named.set(user.id, true));
    // Gone users are kept (bounded: a room that churned through more than twice the diff limit
    // starts over with those named present).
    left.forEach((id) => named.set(id, false));
    if (named.size > 2 * this.diffMaxMembers) {
      for (const [id, present] of named) {
        if (!present) {
          named.delete(id);
        }
      }
    }
  }

  /**
   * Sends a presence notice now, or a whole batch after the room's last one went out. Notices that
   * wait are folded into the last one waiting of their type (a later count replaces an earlier
   * one; diffs combine as a client applies them), so a room that falls behind sends fewer, larger
   * frames instead of a growing queue. A frame is serialized (once) when it leaves: its `ts` is
   * when it was sent.
   */
  private pace(room: string, notice: Notice): void {
    let outbox = this.outboxes.get(room);
    if (outbox === undefined) {
      outbox = { waiting: [], timer: undefined };
      this.outboxes.set(room, outbox);
    }
    const last = outbox.waiting.at(-1);
    if (last?.type === ServerMessageType.PresenceDiff && notice.type === last.type) {
      last.data = foldDiffs(last.data, notice.data);
    } else if (last?.type === ServerMessageType.PresenceCount && notice.type === last.type) {
      last.data = notice.data;
    } else {
      outbox.waiting.push(notice);
    }
    if (outbox.timer === undefined) {
      this.sendNext(room, outbox);
    }
  }

  private sendNext(room: string, outbox: Outbox): void {
    outbox.timer = undefined;
    const wait = (this.toldAt.get(room) ?? -Infinity) + this.batchMs - Date.now();
    if (wait > 0) {
      outbox.timer = setTimeout(() => this.sendNext(room, outbox), wait);
      return;
    }
    const notice = outbox.waiting.shift();
    if (notice === undefined) {
      this.outboxes.delete(room);
      return;
    }
    this.node.deliverToRoom(room, serverFrame(notice.type, notice.data));
    this.toldAt.set(room, Date.now());
    if (outbox.waiting.length > 0) {
      outbox.timer = setTimeout(() => this.sendNext(room, outbox), this.batchMs);
    } else {
      this.outboxes.delete(room);
    }
  }

  private large(count: number): boolean {
    return count > this.diffMaxMembers;
  }
}

/** A presence notice waiting for its room's turn. */
type Notice =
  | { type: typeof ServerMessageType.PresenceDiff; data: PresenceDiffData }
  | { type: typeof ServerMessageType.PresenceCount; data: PresenceCountData };

interface Outbox {
  waiting: Notice[];
  timer: NodeJS.Timeout | undefined;
}

/**
 * One diff that tells what `earlier` then `later` told, as a client applies them (add or update
 * each of `joined`, remove each of `left`, set `count`).
 */
export function foldDiffs(earlier: PresenceDiffData, later: PresenceDiffData): PresenceDiffData {
  const laterLeft = new Set(later.left);
  const laterJoined = new Set(later.joined.map((user) => user.id));
  return {
    room: later.room,
    joined: [
      ...earlier.joined.filter((user) => !laterLeft.has(user.id) && !laterJoined.has(user.id)),
      ...later.joined,
    ],
    left: [
      ...earlier.left.filter((id) => !laterJoined.has(id) && !laterLeft.has(id)),
      ...later.left,
    ],
    count: later.count,
  };
}

function batchOf(batches: Map<string, Batch>, room: string): Batch {
  let batch = batches.get(room);
  if (batch === undefined) {
    batch = { touched: new Set(), typing: new Map() };
    batches.set(room, batch);
  }
  return batch;
}

function merge(batches: Map<string, Batch>, room: string, batch: Batch): void {
  const into = batches.get(room);
  if (into === undefined) {
    batches.set(room, batch);
    return;
  }
  into.resync ||= batch.resync;
  for (const id of batch.touched) {
    into.touched.add(id);
  }
  for (const [id, name] of batch.typing) {
    into.typing.set(id, name);
  }
}
