import { Controller, ForbiddenException, Header, Post, Req, Res, UseGuards } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { AnonymousIdentities } from '../auth/anonymous-identities';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiForbiddenResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { IncomingHttpHeaders } from 'node:http';
import { reachedOverHttps } from '../common/client-ip';
import type { TicketResponse } from '@switchboard/protocol';
import { CurrentSession, SessionGuard } from '../auth/session.guard';
import type { Session } from '../core/session';
import { AppConfig } from '../config/app-config';
import { HttpThrottlerGuard } from '../rate-limit/http-throttler.guard';
import { ThrottledBy, Throttlers } from '../rate-limit/rate-limit.module';
import { HttpErrorBody } from '../common/http-error.dto';
import { TicketResponseBody } from './ticket.dto';
import { TicketsService } from './tickets.service';
import { AdmissionGuard, assertStillWanted } from './admission.guard';
import { SwitchboardController } from '../common/switchboard-controller';

/** The request under either HTTP adapter: both have the headers. */
type HttpRequest = { headers: IncomingHttpHeaders };

@ApiTags('auth')
@SwitchboardController()
@Controller('auth')
export class TicketsController {
  constructor(
    private readonly tickets: TicketsService,
    private readonly config: AppConfig,
    private readonly anonymous: AnonymousIdentities,
    private readonly adapter: HttpAdapterHost,
  ) {}

  /**
   * Exchanges an access token for a short-lived, single-use WebSocket ticket. A browser whose page
   * is on an origin outside `ALLOWED_ORIGINS` gets `403`, naming its origin.
   */
  @Post('ws-ticket')
  @ApiOperation({
    summary: 'Trades an access token for a single-use WebSocket ticket',
    description: "Open the answer's url within expiresIn seconds; the ticket works once.",
  })
  @ApiBearerAuth('access-token')
  @ApiCreatedResponse({ type: TicketResponseBody })
  @ApiUnauthorizedResponse({
    description: 'Missing, invalid, expired or revoked access token',
    type: HttpErrorBody,
  })
  @ApiForbiddenResponse({
    description: "The page's origin is not in ALLOWED_ORIGINS",
    type: HttpErrorBody,
  })
  @ApiTooManyRequestsResponse({
    description: 'More than TICKETS_PER_MINUTE for this user; see Retry-After',
    type: HttpErrorBody,
  })
  @ApiServiceUnavailableResponse({
    description:
      'The instance is busy or shutting down, or the ticket store (Redis) is unreachable; see Retry-After (and retryAfterMs)',
    type: HttpErrorBody,
  })
  // The gate first (a refusal costs nothing), then the user (tickets count per user).
  @UseGuards(AdmissionGuard, SessionGuard, HttpThrottlerGuard)
  @ThrottledBy(Throttlers.Tickets)
  @Header('Cache-Control', 'no-store')
  async issue(
    @CurrentSession() session: Session,
    @Req() req: HttpRequest,
    @Res({ passthrough: true }) res: unknown,
  ): Promise<TicketResponse> {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.config.allowedOrigins.has(origin)) {
      // The socket would be refused (403, which a browser cannot read): say why now, readably.
      throw new ForbiddenException(
        `this page's origin ${origin} is not in ALLOWED_ORIGINS, so it may not open a WebSocket here`,
      );
    }
    assertStillWanted(req);
    const { ticket, expiresIn } = await this.tickets.issue(session);
    if (session.anonymous === true) {
      // Renewed on use: a visitor who keeps coming back keeps the identity.
      const { value } = this.anonymous.renew(session);
      const secure = reachedOverHttps(req, this.config.trustProxy);
      this.adapter.httpAdapter.setHeader(
        res,
        'Set-Cookie',
        this.anonymous.setCookie(value, secure),
      );
    }
    return { ticket, expiresIn, url: `${this.wsBase(req)}?ticket=${ticket}` };
  }

  /** The WebSocket URL as the client reaches this server (behind a trusted proxy, as it says). */
  private wsBase(req: HttpRequest): string {
    const secure = reachedOverHttps(req, this.config.trustProxy);
    const host = req.headers.host ?? `localhost:${this.config.port}`;
    return `${secure ? 'wss' : 'ws'}://${host}${this.config.ws.path}`;
  }
}
