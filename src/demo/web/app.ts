import {
  type ConnectionState,
  type PresenceChange,
  type ReconnectingInfo,
  type RoomMessage,
  ServerMessageType,
  SwitchboardClient,
  type TypingData,
  type UserInfo,
} from '@switchboard/client';

/**
 * The demo: sign in by name (dev tokens), join rooms, chat, see who is here (and how many), who
 * came and went, and who is typing. Every piece of user text goes into the page with textContent,
 * never as HTML.
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

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) {
    throw new Error(`#${id} is missing from index.html`);
  }
  return found as T;
}

const ui = {
  state: element('state'),
  who: element('who'),
  theme: element<HTMLButtonElement>('theme'),
  signout: element<HTMLButtonElement>('signout'),
  banner: element('banner'),
  bannerText: element('banner-text'),
  takeover: element<HTMLButtonElement>('takeover'),
  reconnect: element('reconnect'),
  reconnectIn: element('reconnect-in'),
  retryNow: element<HTMLButtonElement>('retry-now'),
  signin: element<HTMLFormElement>('signin'),
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

/** A line of a room's conversation: a message, or a notice that someone joined or left. */
type Line =
  | { kind: 'message'; message: RoomMessage; ts: number }
  | { kind: 'notice'; text: string; ts: number };

interface RoomView {
  lines: Line[];
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

let client: SwitchboardClient | null = null;
let me: UserInfo | null = null;
let current = '';
let lastTypingSent = 0;
/** Counts the reconnect line down each second while the client waits to try again. */
let countdown: number | undefined;
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

ui.signin.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (name) {
    void signIn({ id: userIdFor(name), name });
  }
});

async function signIn(user: UserInfo): Promise<void> {
  let token: string;
  try {
    token = await devToken(user);
  } catch (error) {
    showBanner((error as Error).message);
    return;
  }
  me = user;
  ui.who.textContent = `${user.name} (${user.id})`;
  ui.signin.hidden = true;
  ui.chat.hidden = false;
  ui.signout.hidden = false;
  hideBanner();

  client = new SwitchboardClient({
    url: location.origin,
    getAccessToken: async ({ refresh }) => (refresh ? (token = await devToken(user)) : token),
  });
  client.on('state', renderState);
  client.on('reconnecting', showReconnect);
  client.on('welcome', () => {
    hideBanner();
    if (client?.joinedRooms.length === 0) {
      void joinRoom('lobby');
    }
  });
  client.on('stopped', ({ state, message }) => {
    if (state === 'replaced') {
      showBanner('This account was opened in another tab or window, so this one stopped.', true);
    } else if (state === 'signed-out') {
      showBanner('You were signed out.');
    } else {
      showBanner(`Disconnected: ${message}`);
    }
  });
  client.on('error', (error) => showBanner(`${error.code}: ${error.message}`));
  // Away too long to catch up (or the server lost its history): reload the room's messages.
  client.on('reset', ({ room }) => {
    if (room !== undefined) {
      view(room).lines = [];
      void loadHistory(room);
    }
  });
  client.onEvent<RoomMessage>(ServerMessageType.RoomMessage, (message, frame) => {
    view(message.room).lines.push({ kind: 'message', message, ts: frame.ts });
    stopTyping(message.room, message.from.id);
    if (message.room === current) {
      renderMessages();
      renderTyping();
    }
  });
  client.on('presence', presenceChanged);
  client.on('typing', typed);
  client.connect();
}

/**
 * A room's members or count changed. A snapshot (the join, or the rejoin after a reconnect)
 * replaces the list, pages loaded before included; a diff adds a line for each user who came or
 * went, and takes those who went out of the loaded pages too.
 */
function presenceChanged({ room, members, count, snapshot, joined, left }: PresenceChange): void {
  const shown = view(room);
  const lines = shown.lines.length;
  if (snapshot) {
    shown.more = [];
    shown.next = members.length < count ? members[members.length - 1]?.id : undefined;
  } else {
    const gone = new Set(left);
    shown.more = shown.more.filter((member) => !gone.has(member.id));
    const ts = Date.now();
    for (const user of joined) {
      if (user.id !== me?.id && !shown.listed.has(user.id)) {
        shown.lines.push({ kind: 'notice', text: `${user.name} joined`, ts });
      }
    }
    for (const id of left) {
      const name = shown.listed.get(id);
      if (id !== me?.id && name !== undefined) {
        shown.lines.push({ kind: 'notice', text: `${name} left`, ts });
      }
    }
  }
  shown.listed = new Map(listedMembers(room).map((member) => [member.id, member.name]));
  if (room === current) {
    if (shown.lines.length > lines) {
      renderMessages();
    }
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
      name: user.name,
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
  client?.close();
  client = null;
  me = null;
  rooms.clear();
  current = '';
  ui.chat.hidden = true;
  ui.signin.hidden = false;
  ui.signout.hidden = true;
  ui.who.textContent = '';
  hideBanner();
  renderState('idle');
});

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

async function joinRoom(room: string): Promise<void> {
  if (!client) {
    return;
  }
  try {
    const joined = await client.join(room);
    current = room;
    if (view(room).lines.length === 0 && joined.position !== undefined) {
      await loadHistory(room);
    }
    renderRooms();
    renderMessages();
    renderMembers();
    renderTyping();
  } catch (error) {
    showBanner(`Could not join ${room}: ${(error as Error).message}`);
  }
}

/** The room's last messages, before the lines that arrived live meanwhile (each message once). */
async function loadHistory(room: string): Promise<void> {
  if (!client) {
    return;
  }
  const { messages } = await client.history(room, { limit: 50 });
  const earlier: Line[] = messages
    .filter((frame) => frame.type === ServerMessageType.RoomMessage)
    .map((frame) => ({ kind: 'message', message: frame.data as RoomMessage, ts: frame.ts }));
  const known = new Set(
    earlier.map((line) => (line.kind === 'message' ? line.message.messageId : '')),
  );
  const live = view(room).lines.filter(
    (line) => line.kind !== 'message' || !known.has(line.message.messageId),
  );
  view(room).lines = [...earlier, ...live];
  if (room === current) {
    renderMessages();
  }
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
    shown.listed = new Map(listedMembers(room).map((member) => [member.id, member.name]));
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
    found = { lines: [], more: [], next: undefined, listed: new Map(), typing: new Map() };
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

function renderRooms(): void {
  ui.rooms.replaceChildren(
    ...[...rooms.keys()].map((room) => {
      const item = document.createElement('li');
      item.classList.toggle('current', room === current);
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = `# ${room}`;
      button.addEventListener('click', () => {
        current = room;
        renderRooms();
        renderMessages();
        renderMembers();
        renderTyping();
      });
      item.append(button);
      return item;
    }),
  );
  ui.roomTitle.textContent = current ? `# ${current}` : '';
}

function renderMessages(): void {
  ui.messages.replaceChildren(
    ...view(current).lines.map((line) => {
      const item = document.createElement('li');
      item.className = line.kind;
      item.append(timeOf(line.ts));
      if (line.kind === 'notice') {
        item.append(line.text);
        return item;
      }
      item.dataset.messageId = line.message.messageId;
      const from = document.createElement('span');
      from.className = 'from';
      from.textContent = line.message.from.name;
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = line.message.text;
      item.append(from, text);
      return item;
    }),
  );
  ui.messages.scrollTop = ui.messages.scrollHeight;
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

function renderMembers(): void {
  const listed = current ? listedMembers(current) : [];
  const count = current ? client?.count(current) : undefined;
  ui.members.replaceChildren(
    ...listed.map((member) => {
      const item = document.createElement('li');
      item.dataset.userId = member.id;
      item.textContent = member.id === me?.id ? `${member.name} (you)` : member.name;
      return item;
    }),
  );
  ui.memberCount.textContent = count === undefined ? '' : String(count);
  ui.moreMembers.hidden = count === undefined || listed.length >= count;
}

function renderTyping(): void {
  const names = [...view(current).typing.values()].map((entry) => entry.name);
  ui.typing.textContent =
    names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

function showBanner(text: string, offerTakeover = false): void {
  ui.bannerText.textContent = text;
  ui.takeover.hidden = !offerTakeover;
  ui.banner.hidden = false;
}

function hideBanner(): void {
  ui.banner.hidden = true;
}
