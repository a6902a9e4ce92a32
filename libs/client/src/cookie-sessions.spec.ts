import { isGuest, type SessionRequestError, signInAsGuest, signOut } from './cookie-sessions';

/** A request as the server saw it. */
interface Seen {
  url: string;
  method: string | undefined;
  credentials: RequestInit['credentials'];
  authorization: string | null;
  contentType: string | null;
  body: unknown;
}

/** A fetch that records each request and answers the next of `answers`. */
function server(...answers: Response[]): { fetch: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetchImpl = (input: string | URL | Request, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    seen.push({
      url: typeof input === 'string' ? input : input instanceof URL ? input.href : input.url,
      method: init.method,
      credentials: init.credentials,
      authorization: headers.get('authorization'),
      contentType: headers.get('content-type'),
      body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body,
    });
    const answer = answers.shift();
    return answer === undefined
      ? Promise.reject(new TypeError('fetch failed'))
      : Promise.resolve(answer);
  };
  return { fetch: fetchImpl, seen };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers });

describe('signInAsGuest', () => {
  it('posts the name with the browser’s cookies and answers who the guest is', async () => {
    const { fetch, seen } = server(json(200, { userId: 'anon:x1', name: 'Ada', expiresIn: 86400 }));
    const guest = await signInAsGuest({ url: 'http://rt.test/', name: 'Ada', fetch });
    expect(guest).toEqual({ userId: 'anon:x1', name: 'Ada', expiresIn: 86400 });
    expect(seen).toEqual([
      {
        url: 'http://rt.test/auth/anonymous',
        method: 'POST',
        credentials: 'include',
        authorization: null,
        contentType: 'application/json',
        body: { name: 'Ada' },
      },
    ]);
  });

  it('says what each refusal means, with the status', async () => {
    const attempt = (answer: Response) =>
      signInAsGuest({ url: 'http://rt.test', name: 'Ada', ...server(answer) }).then(
        () => null,
        (error: SessionRequestError) => ({
          name: error.name,
          status: error.status,
          message: error.message,
          retryAfterMs: error.retryAfterMs,
        }),
      );
    expect(await attempt(json(404, { message: 'Cannot POST /auth/anonymous' }))).toEqual({
      name: 'SessionRequestError',
      status: 404,
      message: 'guest sign-in: this server does not offer it',
      retryAfterMs: null,
    });
    expect(
      await attempt(json(429, { message: 'Too Many Requests' }, { 'retry-after': '42' })),
    ).toEqual({
      name: 'SessionRequestError',
      status: 429,
      message: 'guest sign-in: too many requests, retry after 42 s',
      retryAfterMs: 42_000,
    });
    expect(
      await attempt(
        json(400, { message: ['name must be shorter than or equal to 64 characters'] }),
      ),
    ).toMatchObject({
      status: 400,
      message: 'guest sign-in refused (400): name must be shorter than or equal to 64 characters',
    });
    expect(await attempt(new Response('<html>bad gateway</html>', { status: 502 }))).toMatchObject({
      status: 502,
      message: 'guest sign-in refused (502): HTTP 502',
    });
  });

  it('fails with status 0 when the server cannot be reached', async () => {
    const { fetch } = server();
    await expect(
      signInAsGuest({ url: 'http://rt.test', name: 'Ada', fetch }),
    ).rejects.toMatchObject({
      status: 0,
      message: 'http://rt.test/auth/anonymous could not be reached: fetch failed',
    });
  });
});

describe('signOut', () => {
  it('revokes the session its cookies name, or the access token’s', async () => {
    const { fetch, seen } = server(
      new Response(null, { status: 204 }),
      new Response(null, { status: 204 }),
    );
    expect(await signOut({ url: 'http://rt.test', fetch })).toBe(true);
    expect(await signOut({ url: 'http://rt.test', fetch, accessToken: 'a.token' })).toBe(true);
    expect(
      seen.map(({ url, method, credentials, authorization }) => ({
        url,
        method,
        credentials,
        authorization,
      })),
    ).toEqual([
      {
        url: 'http://rt.test/auth/logout',
        method: 'POST',
        credentials: 'include',
        authorization: null,
      },
      {
        url: 'http://rt.test/auth/logout',
        method: 'POST',
        credentials: 'include',
        authorization: 'Bearer a.token',
      },
    ]);
  });

  it('answers false when there was no live session to sign out, and throws on a refusal', async () => {
    expect(
      await signOut({ url: 'http://rt.test', ...server(json(401, { message: 'no session' })) }),
    ).toBe(false);
    await expect(
      signOut({ url: 'http://rt.test', ...server(json(403, { message: 'origin not allowed' })) }),
    ).rejects.toMatchObject({ status: 403, message: 'sign-out refused (403): origin not allowed' });
  });
});

describe('isGuest', () => {
  it('tells a guest’s user id by its anon: prefix', () => {
    expect(isGuest('anon:3q2-7wQ1hY5d0a8pXkJbZg')).toBe(true);
    expect(isGuest('ada')).toBe(false);
    expect(isGuest('ANON:x')).toBe(false);
  });
});
