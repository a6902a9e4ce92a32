import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

/**
 * The client's IP. Behind a trusted proxy it is the last hop of `X-Forwarded-For` (the address
 * the proxy itself saw); anything further left is client-supplied and cannot be trusted.
 */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const value = Array.isArray(header) ? header[header.length - 1] : header;
    const last = value?.split(',').pop()?.trim();
    if (last) {
      return last;
    }
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * The Node request under an HTTP adapter's own: Fastify wraps it (`request.raw`), Express extends
 * it. Switchboard's guards read addresses and sockets from it, on either adapter.
 */
export function nodeRequest(request: object): IncomingMessage {
  return ((request as { raw?: IncomingMessage }).raw ?? request) as IncomingMessage;
}

/**
 * Whether the client reached this server over HTTPS: the request came over TLS, or a trusted
 * proxy says so (`X-Forwarded-Proto`, its first value).
 */
export function reachedOverHttps(request: object, trustProxy: boolean): boolean {
  const req = nodeRequest(request);
  const forwarded = trustProxy
    ? String(req.headers['x-forwarded-proto'] ?? '')
        .split(',')[0]
        .trim()
    : '';
  return (
    forwarded === 'https' ||
    (forwarded === '' && (req.socket as Partial<TLSSocket>).encrypted === true)
  );
}
