import {
  BadRequestException,
  type CanActivate,
  type ExecutionContext,
  Injectable,
  PayloadTooLargeException,
} from '@nestjs/common';
import type { IncomingHttpHeaders } from 'node:http';
import { JSON_BODY_LIMIT_BYTES, MAX_JSON_DEPTH, valueTooDeep } from './json-depth';

/**
 * The JSON limits of Switchboard's routes under whatever body parser the host application runs
 * (Express' 100 KiB, Fastify's 1 MiB): `413` over 16 KiB, `400` when nested deeper than 32 levels,
 * before any pipe walks the body. The standalone server's own parser refuses both before parsing;
 * this guard is what a host application gets.
 */
@Injectable()
export class JsonLimitsGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context
      .switchToHttp()
      .getRequest<{ headers: IncomingHttpHeaders; body?: unknown }>();
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > JSON_BODY_LIMIT_BYTES) {
      throw new PayloadTooLargeException(`body is larger than ${JSON_BODY_LIMIT_BYTES} bytes`);
    }
    if (valueTooDeep(request.body, MAX_JSON_DEPTH)) {
      throw new BadRequestException(`JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    return true;
  }
}
