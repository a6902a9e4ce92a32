import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CanActivate, type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { RetryableHttpException } from '../common/errors';
import {
  AdmissionGate,
  type AdmissionPass,
  type AdmissionRefusal,
  retryAfterSeconds,
} from '../core/admission-gate';

const PASS = Symbol('admissionPass');

type Admitted = { [PASS]?: AdmissionPass };
/** Fastify wraps Node's request and response (`raw`); Express extends them. */
type Wrapped<T> = T & { raw?: T };

/**
 * The ticket route's place at the admission gate (the upgrade takes its place in `WsGuard`, from
 * the same gate): first among the route's guards, so a refusal costs no JWT verification and no
 * Redis round trip, and is `503` with `Retry-After` and `{ retryAfterMs }`. The place is held until
 * the response is done. A request whose client already left is refused without work.
 */
@Injectable()
export class AdmissionGuard implements CanActivate {
  constructor(private readonly gate: AdmissionGate) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<Wrapped<IncomingMessage> & Admitted>();
    if ((request.raw ?? request).socket.destroyed) {
      throw new RetryableHttpException(HttpStatus.SERVICE_UNAVAILABLE, 'client went away', 1);
    }
    const pass = this.gate.enter();
    if (pass.refused !== undefined) {
      throw refusal(pass);
    }
    const response = http.getResponse<Wrapped<ServerResponse>>();
    (response.raw ?? response).once('close', () => pass.release());
    request[PASS] = pass;
    return true;
  }
}

/**
 * Before the route's own work (a Redis write): refuses a request admitted longer than
 * `ADMISSION_MAX_WAIT_MS` ago, or whose client left meanwhile.
 *
 * @throws RetryableHttpException (503)
 */
export function assertStillWanted(request: object): void {
  const pass = (request as Admitted)[PASS];
  const raw = (request as Wrapped<IncomingMessage>).raw ?? (request as IncomingMessage);
  if (raw.socket?.destroyed) {
    throw new RetryableHttpException(HttpStatus.SERVICE_UNAVAILABLE, 'client went away', 1);
  }
  const late = pass?.check() ?? null;
  if (late !== null) {
    throw refusal(late);
  }
}

function refusal({ refused, retryAfterMs }: AdmissionRefusal): RetryableHttpException {
  return new RetryableHttpException(
    HttpStatus.SERVICE_UNAVAILABLE,
    refused === 'draining'
      ? 'instance is shutting down; retry (another instance takes over)'
      : 'instance busy; retry after the time given',
    retryAfterSeconds(retryAfterMs),
    retryAfterMs,
  );
}
