import {
  Body,
  Controller,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Post,
  UseGuards,
} from '@nestjs/common';
import { CloseCode, type DevTokenResponse } from '@app/protocol';
import { Node } from '../core/node';
import { HttpThrottlerGuard } from '../rate-limit/http-throttler.guard';
import { ThrottledBy, Throttlers } from '../rate-limit/rate-limit.module';
import { AuthService } from './auth.service';
import { DevTokenRequest } from './dev-token.dto';
import { DevTokenService } from './dev-token.service';
import { CurrentSession, JwtAuthGuard } from './jwt-auth.guard';
import type { Session } from '../core/session';

@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly devTokens: DevTokenService,
    private readonly node: Node,
  ) {}

  /** Development sign-in: any user id gets a token. `404` unless `DEV_AUTH`. */
  @Post('dev-token')
  @HttpCode(HttpStatus.OK)
  @UseGuards(HttpThrottlerGuard)
  @ThrottledBy(Throttlers.DevTokens)
  devToken(@Body() body: DevTokenRequest): Promise<DevTokenResponse> {
    if (!this.devTokens.enabled) {
      throw new NotFoundException('Cannot POST /auth/dev-token');
    }
    return this.devTokens.issue(body);
  }

  /** Revokes the caller's session on every instance; its sockets close with `4003`. */
  @Post('logout')
  @UseGuards(JwtAuthGuard)
  @HttpCode(HttpStatus.NO_CONTENT)
  async logout(@CurrentSession() session: Session): Promise<void> {
    await this.auth.revoke(session);
    await this.node.close(
      { sessionId: session.sessionId },
      CloseCode.SessionRevoked,
      'session revoked',
    );
  }
}
