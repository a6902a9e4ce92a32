import { type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import { clientIp, nodeRequest } from '../common/client-ip';
import { RetryableHttpException } from '../common/errors';
import { refused } from '../common/request-refusal';
import { AppConfig } from '../config/app-config';
import type { Session } from '../core/session';

/**
 * `@nestjs/throttler`'s guard for the HTTP routes: a signed-in caller (after `SessionGuard`) is
 * counted by user, anyone else by IP (the last hop of `X-Forwarded-For` behind a trusted proxy),
 * and a refusal is our `429` with `Retry-After`, in Nest's error shape.
 */
@Injectable()
export class HttpThrottlerGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly config: AppConfig,
  ) {
    super(options, storage, reflector);
  }

  protected override getTracker(req: Record<string, unknown>): Promise<string> {
    const session = req.session as Session | undefined;
    if (session !== undefined) {
      return Promise.resolve(`user:${session.userId}`);
    }
    return Promise.resolve(`ip:${clientIp(nodeRequest(req), this.config.trustProxy)}`);
  }

  protected override throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    refused(context.switchToHttp().getRequest<object>());
    const per = detail.tracker.startsWith('user:') ? 'per user' : 'per address';
    const window =
      detail.ttl % 60_000 === 0 ? `${detail.ttl / 60_000} min` : `${detail.ttl / 1000} s`;
    throw new RetryableHttpException(
      HttpStatus.TOO_MANY_REQUESTS,
      `at most ${detail.limit} requests per ${window} ${per}; retry in ${detail.timeToBlockExpire} s`,
      Math.max(1, detail.timeToBlockExpire),
    );
  }
}
