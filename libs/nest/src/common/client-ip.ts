import type { IncomingMessage } from 'node:http';

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
