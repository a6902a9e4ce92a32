import {
  Body,
  Controller,
  ForbiddenException,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Post,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingHttpHeaders } from 'node:http';
import {
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { type AnonymousResponse, CloseCode, type DevTokenResponse } from '@switchboard/protocol';
import { Node } from '../core/node';
import { HttpThrottlerGuard } from '../rate-limit/http-throttler.guard';
import { ThrottledBy, Throttlers } from '../rate-limit/rate-limit.module';
import { AuthService } from './auth.service';
import { HttpErrorBody } from '../common/http-error.dto';
import { DevTokenRequest, DevTokenResponseBody } from './dev-token.dto';
import { DevTokenService } from './dev-token.service';
import { CurrentSession, SessionGuard } from './session.guard';
import type { Session } from '../core/session';
import { SwitchboardController } from '../common/switchboard-controller';
import { JsonLimitsGuard } from '../common/json-limits.guard';
import { nodeRequest, reachedOverHttps } from '../common/client-ip';
import { AppConfig } from '../config/app-config';
import { AnonymousIdentities } from './anonymous-identities';
import { AnonymousRequest, AnonymousResponseBody } from './anonymous.dto';
import { CookieSessions } from './cookie-sessions';
import { CROSS_SITE_COOKIE_REFUSAL } from './session.guard';
import { TokenError } from './token.errors';

/** A request under either HTTP adapter: both have the headers. */
type HttpRequest = { headers: IncomingHttpHeaders };

@ApiTags('auth')
@SwitchboardController()
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly devTokens: DevTokenService,
    private readonly node: Node,
    private readonly anonymous: AnonymousIdentities,
    private readonly cookies: CookieSessions,
    private readonly config: AppConfig,
    private readonly adapter: HttpAdapterHost,
  ) {}

  /** Development sign-in: any user id gets a token. `404` unless `DEV_AUTH`. */
  @Post('dev-token')
  @ApiOperation({
    summary: 'Development sign-in: a token for any user id',
    description: 'Only while DEV_AUTH is on (development); 404 otherwise.',
  })
  @ApiOkResponse({ type: DevTokenResponseBody })
  @ApiNotFoundResponse({ description: 'DEV_AUTH is off', type: HttpErrorBody })
  @ApiTooManyRequestsResponse({
    description: 'Too many dev tokens from this address',
    type: HttpErrorBody,
  })
  @HttpCode(HttpStatus.OK)
  @UseGuards(JsonLimitsGuard, HttpThrottlerGuard)
  @ThrottledBy(Throttlers.DevTokens)
  devToken(@Body() body: DevTokenRequest): Promise<DevTokenResponse> {
    if (!this.devTokens.enabled) {
      throw new NotFoundException('Cannot POST /auth/dev-token');
    }
    return this.devTokens.issue(body);
  }

  /**
   * An anonymous visitor's identity (`ANONYMOUS=true`), in a signed HttpOnly cookie that the
   * ticket route and the upgrade then accept. A visitor who has one keeps it (renamed, renewed).
   * `404` unless `ANONYMOUS`; `403` without an allowed `Origin`.
   */
  @Post('anonymous')
  @ApiOperation({
    summary: 'An anonymous identity for a visitor without an account',
    description:
      'Only while ANONYMOUS is on; 404 otherwise. Sets the HttpOnly, SameSite=Lax cookie switchboard_anon, which POST /auth/ws-ticket, the WebSocket upgrade and POST /auth/logout accept from a page of ALLOWED_ORIGINS. A visitor who already has a valid one keeps the identity, with the new name.',
  })
  @ApiOkResponse({ type: AnonymousResponseBody })
  @ApiNotFoundResponse({ description: 'ANONYMOUS is off', type: HttpErrorBody })
  @ApiForbiddenResponse({
    description: 'The request does not come from a page of ALLOWED_ORIGINS',
    type: HttpErrorBody,
  })
  @ApiTooManyRequestsResponse({
    description: 'Too many identities from this address',
    type: HttpErrorBody,
  })
  @HttpCode(HttpStatus.OK)
  @UseGuards(JsonLimitsGuard, HttpThrottlerGuard)
  @ThrottledBy(Throttlers.Anonymous)
  async signInAnonymously(
    @Body() body: AnonymousRequest,
    @Req() req: HttpRequest,
    @Res({ passthrough: true }) res: unknown,
  ): Promise<AnonymousResponse> {
    if (!this.anonymous.enabled) {
      throw new NotFoundException('Cannot POST /auth/anonymous');
    }
    const { origin } = req.headers;
    if (origin === undefined || origin === 'null' || !this.config.allowedOrigins.has(origin)) {
      throw new ForbiddenException(CROSS_SITE_COOKIE_REFUSAL);
    }
    const { session, value } = this.anonymous.issue(body.name, await this.currentVisitor(req));
    const secure = reachedOverHttps(req, this.config.trustProxy);
    this.adapter.httpAdapter.setHeader(res, 'Set-Cookie', this.anonymous.setCookie(value, secure));
    return {
      userId: session.userId,
      name: session.name,
      expiresIn: this.config.anonymous.ttlS,
    };
  }

  /** Revokes the caller's session on every instance; its sockets close with `4003`. */
  @Post('logout')
  @ApiOperation({
    summary: "Revokes the caller's session",
    description:
      'On every instance: its sockets close with 4003, its token and tickets stop working.',
  })
  @ApiBearerAuth('access-token')
  @ApiNoContentResponse({ description: 'Revoked' })
  @ApiUnauthorizedResponse({ description: 'No valid access token', type: HttpErrorBody })
  @UseGuards(SessionGuard)
  @HttpCode(HttpStatus.NO_CONTENT)
  async logout(
    @CurrentSession() session: Session,
    @Req() req: HttpRequest,
    @Res({ passthrough: true }) res: unknown,
  ): Promise<void> {
    await this.auth.revoke(session);
    if (session.anonymous === true) {
      const secure = reachedOverHttps(req, this.config.trustProxy);
      this.adapter.httpAdapter.setHeader(res, 'Set-Cookie', this.anonymous.clearCookie(secure));
    }
    await this.node.close(
      { sessionId: session.sessionId },
      CloseCode.SessionRevoked,
      'session revoked',
    );
  }

  /** The visitor's live anonymous session, if its cookie names one (else a new identity). */
  private async currentVisitor(req: HttpRequest): Promise<Session | undefined> {
    try {
      const found = await this.cookies.authenticate(nodeRequest(req));
      return found.kind === 'session' && found.session.anonymous === true
        ? found.session
        : undefined;
    } catch (error) {
      if (error instanceof TokenError) {
        return undefined; // expired, revoked or forged: a new identity
      }
      throw error;
    }
  }
}
