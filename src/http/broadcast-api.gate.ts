import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import {
  BROADCAST_API_ROUTE,
  BROADCAST_KEY_REFUSAL,
  type BroadcastApiKeyGuard,
} from '@switchboard/nest';

/**
 * On Fastify, the broadcast key is also checked before the body is read (an `onRequest` hook), so
 * that a caller without the key never gets its body parsed. The hook asks which route the router
 * matched (`routeOptions.url`, the registered pattern), never the URL text, and applies the
 * controller's own guard: the rule lives in `BroadcastApiKeyGuard`, which stays the authority on
 * every adapter.
 */
export function broadcastApiGate(guard: BroadcastApiKeyGuard): onRequestHookHandler {
  return (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    if (
      request.routeOptions.url !== BROADCAST_API_ROUTE ||
      guard.allows(request.headers.authorization)
    ) {
      done();
      return;
    }
    void reply.code(401).header('WWW-Authenticate', 'Bearer').send({
      statusCode: 401,
      error: 'Unauthorized',
      message: BROADCAST_KEY_REFUSAL,
    });
  };
}
