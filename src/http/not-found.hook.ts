import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * A Fastify `onRequest` hook: a request that matched no route is answered `404` (in Nest's error
 * shape) before its body is read, so that a route that does not exist (the broadcast API without a
 * key) answers the same whatever the body holds.
 */
export function notFoundBeforeBody(
  request: FastifyRequest,
  reply: FastifyReply,
  done: () => void,
): void {
  if (!request.is404) {
    done();
    return;
  }
  void reply.code(404).send({
    statusCode: 404,
    error: 'Not Found',
    message: `Cannot ${request.method} ${request.url.split('?', 1)[0]}`,
  });
}
