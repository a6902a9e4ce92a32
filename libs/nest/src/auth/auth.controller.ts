import {
  Body,
  Controller,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Post,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CloseCode, type DevTokenResponse } from '@switchboard/protocol';
import { Node } from '../core/node';
import { HttpThrottlerGuard } from '../rate-limit/http-throttler.guard';
import { ThrottledBy, Throttlers } from '../rate-limit/rate-limit.module';
import { AuthService } from './auth.service';
import { HttpErrorBody } from '../common/http-error.dto';
import { DevTokenRequest, DevTokenResponseBody } from './dev-token.dto';
import { DevTokenService } from './dev-token.service';
import { CurrentSession, JwtAuthGuard } from './jwt-auth.guard';
import type { Session } from '../core/session';
import { SwitchboardController } from '../common/switchboard-controller';
import { JsonLimitsGuard } from '../common/json-limits.guard';

@ApiTags('auth')
@SwitchboardController()
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly devTokens: DevTokenService,
    private readonly node: Node,
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
