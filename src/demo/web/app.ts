import {
  type ClientOptions,
  type ConnectionState,
  type GuestSession,
  isGuest,
  type PresenceChange,
  type ReconnectingInfo,
  type RoomMessage,
  ServerMessageType,
  signInAsGuest,
  signOut,
  SwitchboardClient,
  type TypingData,
  type UserInfo,
} from '@switchboard/client';

/**
 * The demo: sign in by name (dev tokens) or continue as a guest (a cookie session), join rooms,
 * chat, see who is here (and how many), who came and went, who is typing, and which rooms have
 * unread messages. A dev sign-in lasts for the browser tab's session; a cookie session (a guest's,
 * or the server's AUTH_COOKIE) for as long as the cookie. Every piece of user text goes into the
 * page with textContent, never as HTML.
 */

const STATE_LABELS: Record<ConnectionState, string> = {
  idle: 'signed out',
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
  replaced: 'replaced',
  'signed-out': 'signed out',
  closed: 'disconnected',
};
const TYPING_SHOWN_MS = 3000;
const TYPING_SENT_EVERY_MS = 1500;
/** A message from the same sender within this long after the previous one joins its group. */
const GROUP_WITHIN_MS = 5 * 60_000;
/** How close to the end of the conversation counts as "reading the latest" (px). */
const STICK_TO_END_PX = 80;
/** How many colours the avatars and sender names cycle through (`.hue-0` … in style.css). */
const HUES = 8;
const HISTORY_LOST =
  "The server restarted and this room's history was lost; new messages appear below.";
const HISTORY_GAP = 'You were away for a while; some messages from meanwhile may be missing.';
/** Where the tab keeps who signed in and which rooms were open, for a reload. */
const SESSION_KEY = 'switchboard-demo-session';
const TITLE = document.title;

/**
 * How this server lets the page sign in, as it wrote them on `<body>`: by name with dev tokens,
 * as a guest, and whether a session cookie may already sign the page in. A page served without
 * them (an older server) offers the dev sign-in alone.
 */
const OFFERS = {
  devSignIn: document.body.dataset.devSignIn !== 'false',
  guests: document.body.dataset.guests === 'true',
  cookieSessions: document.body.dataset.cookieSessions === 'true',
};

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) {
    throw new Error(`#${id} is missing from index.html`);
  }
  return found as T;
}

const ui = {
  state: element('state'),
  transport: element('transport'),
  who: element('who'),
  theme: element<HTMLButtonElement>('theme'),
  signout: element<HTMLButtonElement>('signout'),
  banner: element('banner'),
  bannerText: element('banner-text'),
  takeover: element<HTMLButtonElement>('takeover'),
  reconnect: element('reconnect'),
  reconnectIn: element('reconnect-in'),
  retryNow: element<HTMLButtonElement>('retry-now'),
  announce: element('announce'),
  signin: element<HTMLFormElement>('signin'),
  signinSubmit: element<HTMLButtonElement>('signin-submit'),
  guestSubmit: element<HTMLButtonElement>('guest-submit'),
  devNote: element('dev-note'),
  guestNote: element('guest-note'),
  cookieNote: element('cookie-note'),
  nameField: element('name-field'),
  name: element<HTMLInputElement>('name'),
  chat: element('chat'),
  rooms: element('rooms'),
  join: element<HTMLFormElement>('join'),
  room: element<HTMLInputElement>('room'),
  roomTitle: element('room-title'),
  messages: element('messages'),
  typing: element('typing'),
  send: element<HTMLFormElement>('send'),
  text: element<HTMLInputElement>('text'),
  members: element('members'),
  memberCount: element('member-count'),
  moreMembers: element<HTMLButtonElement>('more-members'),
};

type MessageLine = { kind: 'message'; message: RoomMessage; ts: number };
/**
 * A line of a room's conversation: a message, or a notice (someone joined or left; the room's
 * history was lost, or could not all be caught up).
 */
type Line = MessageLine | { kind: 'notice'; text: string; ts: number; tone?: 'alert' };

interface RoomView {
  lines: Line[];
  /** Messages from others since the room was last open. */
  unread: number;
  /**
   * The epoch of the room's stream as last seen: a `reset` on a new epoch means the server lost
   * the history, one on the same epoch that the client was away longer than the history keeps.
   */
  epoch: string | undefined;
  /**
   * Members paged in with "Load more": in rooms above 100 members the SDK knows the first page
   * and who came since, not the rest.
   */
  more: UserInfo[];
  /** Where "Load more" goes on from (a page's `next`); undefined: from the first page. */
  next: string | undefined;
  /** Who the member list showed last (id → name), to tell who came and who went. */
  listed: Map<string, string>;
  typing: Map<string, { name: string; timer: number }>;
}

/**
 * How the tab signed in: `token`, by name with dev tokens (the page holds the token); `cookie`,
 * with the browser's session cookie (a guest's, or the server's AUTH_COOKIE; the page holds none).
 */
type SessionKind = 'token' | 'cookie';

/** What the tab keeps in sessionStorage: the user, how they signed in, their rooms, the one open. */
interface SavedSession {
  kind: SessionKind;
  user: UserInfo;
  rooms: string[];
  current: string;
}

/**
 * What newer SDKs say about the connection: its transport (`null` while none is up) and, with tab
 * sharing, whether this tab holds the connection or borrows another tab's. Older SDKs have
 * neither, so the page reads them as optional.
 */
interface ConnectionInfo {
  transport?: 'websocket' | 'sse' | null;
  role?: 'leader' | 'follower' | 'alone';
}

let client: SwitchboardClient | null = null;
/** Who is signed in; null while signed out, and while a cookie session is being tried. */
let me: UserInfo | null = null;
let sessionKind: SessionKind = 'token';
let current = '';
let lastTypingSent = 0;
/** Counts the reconnect line down each second while the client waits to try again. */
let countdown: number | undefined;
/** The rooms to join again after a reload, until the first welcome. */
let restoring: SavedSession | undefined;
/** Messages that came into the open room while the page was hidden (for the title). */
let unseen = 0;
const rooms = new Map<string, RoomView>();

// Theme: the saved choice, else the system's.
const savedTheme = localStorage.getItem('theme');
applyTheme(savedTheme ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
ui.theme.addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('theme', next);
  applyTheme(next);
});

function applyTheme(theme: string): void {
  document.documentElement.dataset.theme = theme;
}

async function devToken(user: UserInfo): Promise<string> {
  const response = await fetch('/auth/dev-token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId: user.id, name: user.name }),
  });
  if (!response.ok) {
    const body = (await response.json()) as { message?: string | string[] };
    throw new Error([body.message].flat().join('; ') || `sign-in failed (${response.status})`);
  }
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** A user id from a display name: lower case, letters and digits, dashes between words. */
function userIdFor(name: string): string {
  const slug = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  return slug || `user-${Math.floor(Math.random() * 1e6)}`;
}

/** The tab's saved session, if it has a readable one. */
function savedSession(): SavedSession | undefined {
  const raw = sessionStorage.getItem(SESSION_KEY);
  if (raw === null) {
    return undefined;
  }
  try {
    const saved = JSON.parse(raw) as Partial<SavedSession> | null;
    const user = saved?.user;
    if (typeof user?.id === 'string' && typeof user.name === 'string') {
      return {
        kind: saved?.kind === 'cookie' ? 'cookie' : 'token',
        user: { id: user.id, name: user.name },
        rooms: Array.isArray(saved?.rooms)
          ? saved.rooms.filter((room): room is string => typeof room === 'string')
          : [],
        current: typeof saved?.current === 'string' ? saved.current : '',
      };
    }
  } catch (error) {
    console.warn('The saved session is not JSON; signing in afresh.', error);
  }
  sessionStorage.removeItem(SESSION_KEY);
  return undefined;
}

function saveSession(): void {
  if (me && client) {
    const saved: SavedSession = { kind: sessionKind, user: me, rooms: client.joinedRooms, current };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
  }
}

// The sign-in form offers what this server does: the dev sign-in, "Continue as guest", both, or
// (a server that signs its users in elsewhere, with AUTH_COOKIE) neither.
ui.devNote.hidden = !OFFERS.devSignIn;
ui.signinSubmit.hidden = !OFFERS.devSignIn;
ui.guestNote.hidden = !OFFERS.guests;
ui.guestSubmit.hidden = !OFFERS.guests;
ui.guestSubmit.classList.toggle('secondary', OFFERS.devSignIn);
ui.nameField.hidden = !OFFERS.devSignIn && !OFFERS.guests;
ui.cookieNote.hidden = !ui.nameField.hidden;

ui.signin.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (!name) {
    return;
  }
  if (OFFERS.guests && (event.submitter === ui.guestSubmit || !OFFERS.devSignIn)) {
    void continueAsGuest(name);
  } else if (OFFERS.devSignIn) {
    void signIn({ id: userIdFor(name), name });
  }
});

// A reload signs the tab in again as whoever it was, in the rooms it had open: with a dev token
// by the saved name, else with the browser's session cookie if it has one.
const resumed = savedSession();
if (resumed?.kind === 'token') {
  ui.name.value = resumed.user.name;
  void signIn(resumed.user, resumed);
} else if (OFFERS.cookieSessions) {
  tryCookieSession(resumed);
} else if (resumed) {
  sessionStorage.removeItem(SESSION_KEY);
}

async function signIn(user: UserInfo, resume?: SavedSession): Promise<void> {
  // A returning tab goes straight to the conversation, without showing the form first.
  ui.signin.hidden = resume !== undefined;
  setSigningIn(true);
  let token: string;
  try {
    token = await devToken(user);
  } catch (error) {
    ui.signin.hidden = false;
    const reason = (error as Error).message;
    showBanner(resume ? `Could not sign you in again as ${user.name}: ${reason}` : reason);
    return;
  } finally {
    setSigningIn(false);
  }
  startClient('token', user, resume, async ({ refresh }) =>
    refresh ? (token = await devToken(user)) : token,
  );
}

/** "Continue as guest": the server sets the guest's cookie, and the client connects with it. */
async function continueAsGuest(name: string): Promise<void> {
  setSigningIn(true);
  let guest: GuestSession;
  try {
    guest = await signInAsGuest({ url: location.origin, name });
  } catch (error) {
    showBanner(`Could not continue as a guest: ${(error as Error).message}`);
    return;
  } finally {
    setSigningIn(false);
  }
  startClient('cookie', { id: guest.userId, name: guest.name });
}

/**
 * Signs the tab in with the browser's session cookie, if it holds one: the client asks for a
 * ticket with it, and the welcome says who the cookie is. Until then the page shows the sign-in
 * form (nothing, for a tab that had a cookie session before a reload); a `401` means there is no
 * session, and the form stays.
 */
function tryCookieSession(resume?: SavedSession): void {
  ui.signin.hidden = resume !== undefined;
  startClient('cookie', null, resume);
}

function setSigningIn(busy: boolean): void {
  ui.signinSubmit.disabled = busy;
  ui.guestSubmit.disabled = busy;
}

/**
 * Connects as `user` (for a cookie session, null until the welcome names the user), replacing
 * any client still trying a cookie session.
 */
function startClient(
  kind: SessionKind,
  user: UserInfo | null,
  resume?: SavedSession,
  getAccessToken?: ClientOptions['getAccessToken'],
): void {
  dropClient();
  sessionKind = kind;
  restoring = resume;
  const started = new SwitchboardClient(
    getAccessToken ? { url: location.origin, getAccessToken } : { url: location.origin },
  );
  client = started;
  listen(started);
  if (user) {
    signedIn(user);
    ui.text.focus();
  }
  started.connect();
}

/**
 * The client's events. Each handler first checks that its client is still the page's: one
 * replaced (a sign-out, or a cookie session tried and given up) says nothing more. While a cookie
 * session is only being tried (`me` is null), the page shows nothing of it but its outcome.
 */
function listen(target: SwitchboardClient): void {
  const ours = () => client === target;
  const shown = () => ours() && me !== null;
  target.on('state', (state) => {
    if (shown()) {
      renderState(state);
      renderConnection();
    }
  });
  const connectionChanged = () => {
    if (shown()) {
      renderConnection();
    }
  };
  subscribeIfSupported(target, 'transport', connectionChanged);
  subscribeIfSupported(target, 'role', connectionChanged);
  target.on('reconnecting', (info) => {
    if (shown()) {
      showReconnect(info);
    }
  });
  target.on('welcome', (welcome) => {
    if (!ours()) {
      return;
    }
    if (me === null) {
      signedIn(welcome.user);
      renderState(target.state);
      renderConnection();
    }
    hideBanner();
    if (target.joinedRooms.length === 0) {
      const wanted = restoring;
      restoring = undefined;
      void enterRooms(wanted?.rooms.length ? wanted.rooms : ['lobby'], wanted?.current ?? '');
    }
  });
  target.on('stopped', ({ state, message }) => {
    if (!ours()) {
      return;
    }
    if (me === null) {
      // The cookie session did not open: no cookie, or one the server no longer honours.
      const wasSignedIn = restoring !== undefined;
      dropClient();
      signedOut();
      if (wasSignedIn && state !== 'signed-out') {
        showBanner(`Could not sign you in again: ${message}`);
      }
    } else if (state === 'replaced') {
      showBanner('This account was opened in another tab or window, so this one stopped.', true);
    } else if (state === 'signed-out') {
      dropClient();
      signedOut();
      showBanner('You were signed out.');
    } else {
      showBanner(`Disconnected: ${message}`);
    }
  });
  target.on('error', (error) => {
    if (ours()) {
      showBanner(`${error.code}: ${error.message}`);
    }
  });
  // A `recovered` needs nothing: the missed messages follow as live ones.
  target.on('reset', ({ room }) => {
    if (ours() && room !== undefined) {
      historyReset(room);
    }
  });
  target.onEvent<RoomMessage>(ServerMessageType.RoomMessage, (message, frame) => {
    if (ours()) {
      received(message, frame.ts);
    }
  });
  target.on('presence', (change) => {
    if (ours()) {
      presenceChanged(change);
    }
  });
  target.on('typing', (typing) => {
    if (ours()) {
      typed(typing);
    }
  });
}

/** Shows the conversation as `user`. */
function signedIn(user: UserInfo): void {
  me = user;
  ui.who.textContent = isGuest(user.id) ? `${user.name} (guest)` : `${user.name} (${user.id})`;
  ui.signin.hidden = true;
  ui.chat.hidden = false;
  ui.signout.hidden = false;
  hideBanner();
  saveSession();
}

/** Closes the page's client, if any, without a word from it. */
function dropClient(): void {
  const dropped = client;
  client = null;
  dropped?.close();
}

/**
 * Subscribes to a client event that this SDK may not have yet (`transport` and `role` come with
 * the SSE fallback and tab sharing). Without it, the connection line still follows `state`.
 */
function subscribeIfSupported(target: SwitchboardClient, event: string, handler: () => void): void {
  if (!(event in target)) {
    return;
  }
  const untyped = target as unknown as { on(event: string, handler: () => void): unknown };
  try {
    untyped.on(event, handler);
  } catch (error) {
    console.info(`This SDK has no "${event}" event; the connection line follows its state.`, error);
  }
}

/** A message goes into its room; from others, it counts as unread in a room not open. */
function received(message: RoomMessage, ts: number): void {
  const { room } = message;
  const shown = view(room);
  shown.epoch = client?.position(room)?.epoch ?? shown.epoch;
  stopTyping(room, message.from.id);
  addLine(room, { kind: 'message', message, ts });
  const mine = message.from.id === me?.id;
  if (room !== current) {
    if (!mine) {
      shown.unread += 1;
      renderRooms();
      renderTitle();
    }
    return;
  }
  renderTyping();
  if (!mine) {
    announce(`${nameOf(message.from)}: ${message.text}`);
    if (document.hidden) {
      unseen += 1;
      renderTitle();
    }
  }
}

/**
 * The client could not recover a room after a reconnect. On a new epoch the server lost the
 * room's history (an embedded server restarted, or Redis lost its data): say so where the
 * conversation goes on, keep what the page showed above it, and add what was said since. On the
 * same epoch the page was away longer than the history keeps: add the latest messages, and say
 * when some may be missing between.
 */
function historyReset(room: string): void {
  const shown = view(room);
  const epoch = client?.position(room)?.epoch;
  const lost = epoch !== shown.epoch;
  shown.epoch = epoch;
  if (lost) {
    addLine(room, { kind: 'notice', text: HISTORY_LOST, ts: Date.now(), tone: 'alert' });
    if (room === current) {
      announce(HISTORY_LOST);
    }
  }
  void catchUp(room, shown.lines.length, !lost);
}

/**
 * Puts the room's latest messages that the page does not show yet at `at` (the lines after it
 * arrived live since). With `mayHaveGap`, a notice goes first when none of them was shown yet
 * though earlier ones were: what was said between is lost to the page.
 */
async function catchUp(room: string, at: number, mayHaveGap: boolean): Promise<void> {
  let latest: MessageLine[];
  try {
    latest = await fetchHistory(room);
  } catch (error) {
    showBanner(`Could not load the messages of # ${room}: ${(error as Error).message}`);
    return;
  }
  const shown = view(room);
  const known = messageIds(shown.lines);
  const fresh = latest.filter((line) => !known.has(line.message.messageId));
  if (fresh.length === 0) {
    return;
  }
  const before = shown.lines.slice(0, at);
  const gap =
    mayHaveGap && fresh.length === latest.length && before.some((line) => line.kind === 'message');
  const added: Line[] = gap
    ? [{ kind: 'notice', text: HISTORY_GAP, ts: fresh[0].ts, tone: 'alert' }, ...fresh]
    : fresh;
  shown.lines.splice(Math.min(at, shown.lines.length), 0, ...added);
  if (room === current) {
    renderMessages();
  }
}

/**
 * A room's members or count changed. A snapshot (the join, or the rejoin after a reconnect)
 * replaces the list, pages loaded before included; a diff adds a line for each user who came or
 * went, and takes those who went out of the loaded pages too.
 */
function presenceChanged({ room, members, count, snapshot, joined, left }: PresenceChange): void {
  const shown = view(room);
  if (snapshot) {
    shown.more = [];
    shown.next = members.length < count ? members[members.length - 1]?.id : undefined;
  } else {
    const gone = new Set(left);
    shown.more = shown.more.filter((member) => !gone.has(member.id));
    const ts = Date.now();
    for (const user of joined) {
      if (user.id !== me?.id && !shown.listed.has(user.id)) {
        addLine(room, { kind: 'notice', text: `${nameOf(user)} joined`, ts });
      }
    }
    for (const id of left) {
      const name = shown.listed.get(id);
      if (id !== me?.id && name !== undefined) {
        addLine(room, { kind: 'notice', text: `${name} left`, ts });
      }
    }
  }
  shown.listed = new Map(listedMembers(room).map((member) => [member.id, nameOf(member)]));
  if (room === current) {
    renderMembers();
  }
}

/**
 * Users typed in a room (the SDK leaves this user out): each one shows until TYPING_SHOWN_MS
 * after their last notice.
 */
function typed({ room, users }: TypingData): void {
  for (const user of users) {
    stopTyping(room, user.id);
    view(room).typing.set(user.id, {
      name: nameOf(user),
      timer: window.setTimeout(() => {
        view(room).typing.delete(user.id);
        renderTyping();
      }, TYPING_SHOWN_MS),
    });
  }
  if (room === current) {
    renderTyping();
  }
}

/**
 * Takes a user's typing indicator down, timer included: a timer left running would later take
 * down the indicator of the user's next typing.
 */
function stopTyping(room: string, userId: string): void {
  const typing = view(room).typing;
  window.clearTimeout(typing.get(userId)?.timer);
  typing.delete(userId);
}

ui.signout.addEventListener('click', () => {
  const kind = sessionKind;
  dropClient();
  signedOut();
  if (kind === 'cookie') {
    // Revokes the session on the server (its other tabs sign out too) and clears a guest's cookie.
    signOut({ url: location.origin }).catch((error: unknown) =>
      showBanner(`Could not sign out on the server: ${(error as Error).message}`),
    );
  }
});

/** Back to the sign-in form, with nothing of the last session left on the page. */
function signedOut(): void {
  sessionStorage.removeItem(SESSION_KEY);
  me = null;
  restoring = undefined;
  for (const shown of rooms.values()) {
    for (const { timer } of shown.typing.values()) {
      window.clearTimeout(timer);
    }
  }
  rooms.clear();
  current = '';
  unseen = 0;
  ui.rooms.replaceChildren();
  ui.messages.replaceChildren();
  ui.members.replaceChildren();
  ui.chat.hidden = true;
  ui.signin.hidden = false;
  ui.signout.hidden = true;
  ui.who.textContent = '';
  hideBanner();
  renderState('idle');
  renderConnection();
  renderTitle();
  ui.name.focus();
}

ui.retryNow.addEventListener('click', () => {
  client?.retryNow();
});

ui.takeover.addEventListener('click', () => {
  hideBanner();
  client?.takeOver();
});

ui.join.addEventListener('submit', (event) => {
  event.preventDefault();
  const room = ui.room.value.trim();
  if (room) {
    ui.room.value = '';
    void joinRoom(room);
  }
});

ui.send.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (text.trim() && current && client?.message(current, text)) {
    ui.text.value = '';
  }
});

ui.moreMembers.addEventListener('click', () => {
  void loadMoreMembers(current);
});

ui.text.addEventListener('input', () => {
  const now = Date.now();
  if (current && now - lastTypingSent > TYPING_SENT_EVERY_MS) {
    lastTypingSent = now;
    client?.typing(current);
  }
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && unseen > 0) {
    unseen = 0;
    renderTitle();
  }
});

/** Joins the rooms in turn, then opens `wanted` if it is one of them, else the first. */
async function enterRooms(list: string[], wanted: string): Promise<void> {
  for (const room of list) {
    await joinRoom(room, false);
  }
  const joined = client?.joinedRooms ?? [];
  if (joined.length > 0) {
    selectRoom(joined.includes(wanted) ? wanted : joined[0]);
  }
}

/** Joins a room (a room already joined is only opened) and, with `open`, shows it. */
async function joinRoom(room: string, open = true): Promise<void> {
  if (!client) {
    return;
  }
  if (client.joinedRooms.includes(room)) {
    if (open) {
      selectRoom(room);
    }
    return;
  }
  try {
    const joined = await client.join(room);
    const shown = view(room);
    shown.epoch = joined.position?.epoch;
    if (shown.lines.length === 0 && joined.position !== undefined) {
      await loadHistory(room);
    }
    saveSession();
    if (open) {
      selectRoom(room);
    } else {
      renderRooms();
    }
  } catch (error) {
    showBanner(`Could not join ${room}: ${(error as Error).message}`);
  }
}

function selectRoom(room: string): void {
  current = room;
  view(room).unread = 0;
  saveSession();
  renderRooms();
  renderMessages(true);
  renderMembers();
  renderTyping();
  renderTitle();
}

/** The room's last messages, before the lines that arrived live meanwhile (each message once). */
async function loadHistory(room: string): Promise<void> {
  const earlier = await fetchHistory(room);
  const known = new Set(earlier.map((line) => line.message.messageId));
  const live = view(room).lines.filter(
    (line) => line.kind !== 'message' || !known.has(line.message.messageId),
  );
  view(room).lines = [...earlier, ...live];
  if (room === current) {
    renderMessages();
  }
}

async function fetchHistory(room: string): Promise<MessageLine[]> {
  if (!client) {
    return [];
  }
  const { messages } = await client.history(room, { limit: 50 });
  return messages
    .filter((frame) => frame.type === ServerMessageType.RoomMessage)
    .map((frame) => ({ kind: 'message', message: frame.data as RoomMessage, ts: frame.ts }));
}

function messageIds(lines: Line[]): Set<string> {
  return new Set(
    lines.flatMap((line) => (line.kind === 'message' ? [line.message.messageId] : [])),
  );
}

/** The next page of a large room's members, after those listed (each member once). */
async function loadMoreMembers(room: string): Promise<void> {
  if (!client || !room) {
    return;
  }
  const shown = view(room);
  ui.moreMembers.disabled = true;
  try {
    const page = await client.presence(room, { after: shown.next });
    const known = new Set(listedMembers(room).map((member) => member.id));
    shown.more.push(...page.members.filter((member) => !known.has(member.id)));
    shown.next = page.next;
    shown.listed = new Map(listedMembers(room).map((member) => [member.id, nameOf(member)]));
  } catch (error) {
    showBanner(`Could not list the members of ${room}: ${(error as Error).message}`);
  } finally {
    ui.moreMembers.disabled = false;
    if (room === current) {
      renderMembers();
    }
  }
}

/** The members the page can list: those the SDK keeps, and those paged in, in user-id order. */
function listedMembers(room: string): UserInfo[] {
  const byId = new Map<string, UserInfo>();
  for (const member of [...view(room).more, ...(client?.members(room) ?? [])]) {
    byId.set(member.id, member);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function view(room: string): RoomView {
  let found = rooms.get(room);
  if (!found) {
    found = {
      lines: [],
      unread: 0,
      epoch: undefined,
      more: [],
      next: undefined,
      listed: new Map(),
      typing: new Map(),
    };
    rooms.set(room, found);
  }
  return found;
}

function renderState(state: ConnectionState): void {
  ui.state.dataset.state = state;
  ui.state.textContent = STATE_LABELS[state];
  if (state !== 'reconnecting') {
    hideReconnect();
  }
}

/** "WebSocket", "SSE", "via another tab": quietly, next to the state, when the SDK says. */
function renderConnection(): void {
  const info = (client ?? {}) as ConnectionInfo;
  const parts: string[] = [];
  const titles: string[] = [];
  if (client?.state === 'open' && info.transport === 'websocket') {
    parts.push('WebSocket');
    titles.push('Connected over a WebSocket.');
  } else if (client?.state === 'open' && info.transport === 'sse') {
    parts.push('SSE');
    titles.push('Connected over Server-Sent Events: WebSockets were not available.');
  }
  if (info.role === 'follower') {
    parts.push('via another tab');
    titles.push('Another tab of this browser holds the connection and shares it with this one.');
  } else if (info.role === 'leader') {
    titles.push("This tab holds the connection and shares it with this browser's other tabs.");
  }
  ui.transport.textContent = parts.join(' · ');
  ui.transport.title = titles.join(' ');
  ui.transport.hidden = parts.length === 0;
}

/** "reconnecting in N s — retry now", counting down to the client's next attempt. */
function showReconnect({ delayMs }: ReconnectingInfo): void {
  const at = Date.now() + delayMs;
  const render = () => {
    ui.reconnectIn.textContent = String(Math.max(0, Math.ceil((at - Date.now()) / 1000)));
  };
  window.clearInterval(countdown);
  render();
  countdown = window.setInterval(render, 1000);
  ui.reconnect.hidden = false;
}

function hideReconnect(): void {
  window.clearInterval(countdown);
  countdown = undefined;
  ui.reconnect.hidden = true;
}

/**
 * The room list, updated in place: a room's item is made once and kept, so a keyboard user's
 * focus stays on it while messages come in.
 */
function renderRooms(): void {
  const items = new Map<string, HTMLLIElement>();
  for (const item of ui.rooms.querySelectorAll<HTMLLIElement>(':scope > li')) {
    items.set(item.dataset.room ?? '', item);
  }
  for (const [room, shown] of rooms) {
    let item = items.get(room);
    if (!item) {
      item = roomItem(room);
      ui.rooms.append(item);
    }
    const open = room === current;
    item.classList.toggle('current', open);
    item.classList.toggle('has-unread', shown.unread > 0);
    const button = item.querySelector('button')!;
    if (open) {
      button.setAttribute('aria-current', 'true');
    } else {
      button.removeAttribute('aria-current');
    }
    const unread = item.querySelector<HTMLElement>('.unread')!;
    unread.hidden = shown.unread === 0;
    unread.replaceChildren(
      shown.unread > 99 ? '99+' : String(shown.unread),
      hiddenText(shown.unread === 1 ? ' unread message' : ' unread messages'),
    );
  }
  ui.roomTitle.textContent = current ? `# ${current}` : '';
}

function roomItem(room: string): HTMLLIElement {
  const item = document.createElement('li');
  item.dataset.room = room;
  const button = document.createElement('button');
  button.type = 'button';
  const name = document.createElement('span');
  name.className = 'name';
  name.textContent = `# ${room}`;
  const unread = document.createElement('span');
  unread.className = 'unread';
  unread.hidden = true;
  button.append(name, unread);
  button.addEventListener('click', () => selectRoom(room));
  item.append(button);
  return item;
}

/** The open room's whole conversation; it stays at the end if the reader was there. */
function renderMessages(toEnd = false): void {
  const stick = toEnd || atEnd();
  const lines = current ? view(current).lines : [];
  ui.messages.replaceChildren(
    ...lines.flatMap((line, index) => lineElements(lines[index - 1], line)),
  );
  ui.messages.setAttribute('aria-label', current ? `Messages in # ${current}` : 'Messages');
  if (stick) {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
}

/** Adds a line to a room, and to the page if the room is open (without drawing the rest again). */
function addLine(room: string, line: Line): void {
  const lines = view(room).lines;
  lines.push(line);
  if (room !== current) {
    return;
  }
  const stick = atEnd() || (line.kind === 'message' && line.message.from.id === me?.id);
  ui.messages.append(...lineElements(lines[lines.length - 2], line));
  if (stick) {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }
}

function atEnd(): boolean {
  const list = ui.messages;
  return list.scrollHeight - list.scrollTop - list.clientHeight < STICK_TO_END_PX;
}

/** A line's elements: a day separator first when the day changed since the previous line. */
function lineElements(previous: Line | undefined, line: Line): HTMLLIElement[] {
  const elements: HTMLLIElement[] = [];
  if (previous === undefined || dayOf(previous.ts) !== dayOf(line.ts)) {
    elements.push(dayElement(line.ts));
  }
  if (line.kind === 'notice') {
    const item = document.createElement('li');
    item.className = 'notice';
    if (line.tone === 'alert') {
      item.classList.add('alert');
    }
    item.append(timeOf(line.ts), line.text);
    elements.push(item);
  } else {
    elements.push(messageElement(line, continues(previous, line)));
  }
  return elements;
}

/** Whether a message goes on its sender's group: the same sender, shortly after, same day. */
function continues(previous: Line | undefined, line: MessageLine): boolean {
  return (
    previous?.kind === 'message' &&
    previous.message.from.id === line.message.from.id &&
    line.ts - previous.ts < GROUP_WITHIN_MS &&
    dayOf(previous.ts) === dayOf(line.ts)
  );
}

/**
 * A message bubble: this user's on the right, coloured; others' on the left, under the sender's
 * avatar and name at the start of their group. The name is always there for screen readers.
 */
function messageElement({ message, ts }: MessageLine, continued: boolean): HTMLLIElement {
  const mine = message.from.id === me?.id;
  const item = document.createElement('li');
  item.className = `message ${mine ? 'mine' : 'theirs'}`;
  item.classList.toggle('continued', continued);
  item.dataset.messageId = message.messageId;
  item.dataset.from = message.from.id;
  const hue = `hue-${hueOf(message.from.id)}`;
  if (!mine && !continued) {
    const avatar = document.createElement('span');
    avatar.className = `avatar ${hue}`;
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = initials(message.from.name);
    item.append(avatar);
  }
  const bubble = document.createElement('div');
  bubble.className = 'bubble';
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = mine ? 'You' : nameOf(message.from);
  from.classList.add(mine || continued ? 'visually-hidden' : hue);
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = message.text;
  bubble.append(from, text, timeOf(ts));
  item.append(bubble);
  return item;
}

function dayElement(ts: number): HTMLLIElement {
  const item = document.createElement('li');
  item.className = 'day';
  item.textContent = dayLabel(ts);
  return item;
}

function dayOf(ts: number): string {
  return new Date(ts).toDateString();
}

/** "Today", "Yesterday", else the date ("Monday, 3 March"; with the year if not this one). */
function dayLabel(ts: number): string {
  const date = new Date(ts);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) {
    return 'Today';
  }
  if (date.toDateString() === yesterday.toDateString()) {
    return 'Yesterday';
  }
  return date.toLocaleDateString([], {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: date.getFullYear() === today.getFullYear() ? undefined : 'numeric',
  });
}

/** `14:05` in the reader's time zone, with the full date and time on hover. */
function timeOf(ts: number): HTMLTimeElement {
  const time = document.createElement('time');
  const date = new Date(ts);
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  time.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return time;
}

/** The same colour for a user everywhere, from their id. */
function hueOf(id: string): number {
  let hash = 0;
  for (const char of id) {
    hash = (hash * 31 + char.codePointAt(0)!) >>> 0;
  }
  return hash % HUES;
}

/** A user as the page names them to others: "Ada (guest)" for a guest (an `anon:` id), else the name. */
function nameOf(user: UserInfo): string {
  return isGuest(user.id) ? `${user.name} (guest)` : user.name;
}

/** "Grace Hopper" → "GH"; "bob" → "B". */
function initials(name: string): string {
  return name
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .map((word) => Array.from(word)[0] ?? '')
    .join('')
    .toUpperCase();
}

function hiddenText(text: string): HTMLSpanElement {
  const span = document.createElement('span');
  span.className = 'visually-hidden';
  span.textContent = text;
  return span;
}

function renderMembers(): void {
  const listed = current ? listedMembers(current) : [];
  const count = current ? client?.count(current) : undefined;
  ui.members.replaceChildren(
    ...listed.map((member) => {
      const item = document.createElement('li');
      item.dataset.userId = member.id;
      const marks = [isGuest(member.id) ? 'guest' : '', member.id === me?.id ? 'you' : ''];
      const said = marks.filter((mark) => mark !== '');
      item.textContent = said.length > 0 ? `${member.name} (${said.join(', ')})` : member.name;
      return item;
    }),
  );
  ui.memberCount.textContent = count === undefined ? '' : String(count);
  ui.moreMembers.hidden = count === undefined || listed.length >= count;
}

function renderTyping(): void {
  const names = current ? [...view(current).typing.values()].map((entry) => entry.name) : [];
  ui.typing.textContent =
    names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

/** "(3) Switchboard demo": the unread messages of the other rooms, and of this one while hidden. */
function renderTitle(): void {
  let count = unseen;
  for (const shown of rooms.values()) {
    count += shown.unread;
  }
  document.title = count > 0 ? `(${count}) ${TITLE}` : TITLE;
}

/** Tells screen readers, politely, what the conversation just showed. */
function announce(text: string): void {
  ui.announce.textContent = text;
}

function showBanner(text: string, offerTakeover = false): void {
  ui.bannerText.textContent = text;
  ui.takeover.hidden = !offerTakeover;
  ui.banner.hidden = false;
}

function hideBanner(): void {
  ui.banner.hidden = true;
}
