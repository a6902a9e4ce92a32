import { retryAfterMs } from './retry-hints';

/** Every guest's user id starts with this (the server's anonymous visitors: `anon:<random>`). */
export const GUEST_USER_PREFIX = 'anon:';

/** `signInAsGuest`'s answer: who the browser now is. The identity itself is in a cookie. */
export interface GuestSession {
  /** `anon:` and a random id, the same for as long as the cookie lives. */
  userId: string;
  /** The name others see, as the server sanitized it. */
  name: string;
  /** Seconds the identity lives unused (the server's `ANONYMOUS_TTL_S`); each connection renews it. */
  expiresIn: number;
}

/** Where, and with what, the helpers reach the server. */
export interface SessionRequestOptions {
  /** The server's base URL, as `ClientOptions.url`. */
  url: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** What `signInAsGuest` or `signOut` failed on: the server's status and its reason. */
export class SessionRequestError extends Error {
  constructor(
    message: string,
    /** The HTTP status; 0 when the request did not reach the server. */
    readonly status: number,
    /** How long to wait before trying again (a `429`), when the server said. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
    this.name = 'SessionRequestError';
  }
}

/**
 * Signs the browser in as a guest (the server's anonymous visitors, `ANONYMOUS=true`): the server
 * answers who the guest is and sets an HttpOnly cookie that holds the identity, so the page never
 * sees a credential. Then connect a client without `getAccessToken` (a cookie session). A browser
 * that is a guest already stays the same guest, with the new name.
 *
 * @param options.name the name others see (1–64 characters; the server removes control characters)
 * @throws SessionRequestError `404` when the server has no guests, `403` from a page outside its
 *   `ALLOWED_ORIGINS`, `400` for a name it refuses, `429` with `retryAfterMs` after too many
 *   sign-ins from one address
 *
 * @example
 * const guest = await signInAsGuest({ url: 'https://rt.example.com', name: 'Ada' });
 * const client = new SwitchboardClient({ url: 'https://rt.example.com' });
 * client.connect();
 */
export async function signInAsGuest(
  options: SessionRequestOptions & { name: string },
): Promise<GuestSession> {
  const response = await send(options, 'anonymous', {
    method: 'POST',
    credentials: 'include',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: options.name }),
  });
  if (response.status !== 200) {
    throw await refusal(response, 'guest sign-in');
  }
  const body = (await response.json()) as Partial<GuestSession>;
  if (typeof body.userId !== 'string' || typeof body.name !== 'string') {
    throw new SessionRequestError('guest sign-in: the server answered no user', response.status);
  }
  return { userId: body.userId, name: body.name, expiresIn: Number(body.expiresIn) };
}

/**
 * Signs out: the server revokes the session on every instance (its connections close with `4003`,
 * and clients stop `signed-out`) and clears a guest's cookie. Without `accessToken`, the browser's
 * cookies name the session (a guest's, or the server's `AUTH_COOKIE`).
 *
 * @returns true when a session was revoked; false when the request carried none that was live
 *   (never signed in, already signed out, or expired): there is nothing left to sign out
 * @throws SessionRequestError `403` from a page outside the server's `ALLOWED_ORIGINS`; any other
 *   refusal
 */
export async function signOut(
  options: SessionRequestOptions & { accessToken?: string },
): Promise<boolean> {
  const response = await send(options, 'logout', {
    method: 'POST',
    credentials: 'include',
    headers:
      options.accessToken === undefined ? {} : { authorization: `Bearer ${options.accessToken}` },
  });
  if (response.status === 204 || response.status === 200) {
    return true;
  }
  if (response.status === 401) {
    return false;
  }
  throw await refusal(response, 'sign-out');
}

/** Whether a user id is a guest's (`anon:…`): a page may show guests apart. */
export function isGuest(userId: string): boolean {
  return userId.startsWith(GUEST_USER_PREFIX);
}

async function send(
  options: SessionRequestOptions,
  route: 'anonymous' | 'logout',
  init: RequestInit,
): Promise<Response> {
  const fetchImpl = options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
  if (fetchImpl === undefined) {
    throw new Error('fetch is missing: pass it in the options');
  }
  const url = `${options.url.replace(/\/$/, '')}/auth/${route}`;
  try {
    return await fetchImpl.call(globalThis, url, init);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SessionRequestError(`${url} could not be reached: ${reason}`, 0);
  }
}

/** A Nest error body (`message` may be a list: the validation's). */
interface ErrorBody {
  message?: unknown;
  retryAfterMs?: unknown;
}

/** The error for a refused request, in one place: what each status means here. */
async function refusal(response: Response, what: string): Promise<SessionRequestError> {
  let body: ErrorBody | null;
  try {
    body = (await response.json()) as ErrorBody | null;
  } catch {
    body = null; // Not JSON (a proxy's page): the status says enough.
  }
  const said = [body?.message].flat().filter((part) => typeof part === 'string');
  const reason = said.length > 0 ? said.join('; ') : `HTTP ${response.status}`;
  const waitMs = retryAfterMs(response.headers.get('retry-after'), body);
  switch (response.status) {
    case 404:
      return new SessionRequestError(`${what}: this server does not offer it`, 404);
    case 429:
      return new SessionRequestError(
        `${what}: too many requests${waitMs === null ? '' : `, retry after ${Math.ceil(waitMs / 1000)} s`}`,
        429,
        waitMs,
      );
    default:
      return new SessionRequestError(
        `${what} refused (${response.status}): ${reason}`,
        response.status,
      );
  }
}
