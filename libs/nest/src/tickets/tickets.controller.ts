import { Controller, ForbiddenException, Header, Post, Req, UseGuards } from '@nestjs/common';
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
import type { TLSSocket } from 'node:tls';
import { nodeRequest } from '../common/client-ip';
import type { TicketResponse } from '@switchboard/protocol';
import { CurrentSession, JwtAuthGuard } from '../auth/jwt-auth.guard';
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
  @UseGuards(AdmissionGuard, JwtAuthGuard, HttpThrottlerGuard)
  @ThrottledBy(Throttlers.Tickets)
  @Header('Cache-Control', 'no-store')
  async issue(
    @CurrentSession() session: Session,
    @Req() req: HttpRequest,
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
    return { ticket, expiresIn, url: `${this.wsBase(req)}?ticket=${ticket}` };
  }

  /** The WebSocket URL as the client reaches this server (behind a trusted proxy, as it says). */
  private wsBase(req: HttpRequest): string {
    const forwardedProto = this.config.trustProxy
      ? String(req.headers['x-forwarded-proto'] ?? '')
          .split(',')[0]
          .trim()
      : '';
    const secure =
      forwardedProto === 'https' ||
      (forwardedProto === '' && (nodeRequest(req).socket as Partial<TLSSocket>).encrypted === true);
    const host = req.headers.host ?? `localhost:${this.config.port}`;
    return `${secure ? 'wss' : 'ws'}://${host}${this.config.ws.path}`;
  }
}
