import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { bearerMatches } from '../common/bearer';

const ROUTE = '/api/broadcast';

/**
 * Guards `POST /api/broadcast` ahead of the body parser (a Fastify `onRequest` hook), in the order
 * a caller must meet them: route enabled (`404` while `BROADCAST_API_KEY` is unset), then the key
 * (`401`), and only then the body (`400` from the validation). An anonymous caller learns nothing
 * of the body's schema, and a body is never parsed for one.
 */
export function broadcastApiGate(apiKey: string | undefined): onRequestHookHandler {
  const key = apiKey ? Buffer.from(apiKey) : null;
  return (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    // Every request passes here (the ticket route on the connect path too): the cheap test first.
    const path = request.url.startsWith(ROUTE) ? request.url.split('?', 1)[0] : '';
    if (path !== ROUTE && path !== `${ROUTE}/`) {
      done();
      return;
    }
    if (key === null) {
      void reply.code(404).send({
        statusCode: 404,
        error: 'Not Found',
        message: `Cannot ${request.method} ${path}`,
      });
      return;
    }
    if (!bearerMatches(request.headers.authorization, key)) {
      void reply.code(401).header('WWW-Authenticate', 'Bearer').send({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'missing or wrong Authorization: Bearer <BROADCAST_API_KEY>',
      });
      return;
    }
    done();
  };
}
