import {
  BadRequestException,
  Body,
  Controller,
  HttpCode,
  HttpStatus,
  Post,
  UseGuards,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiNotFoundResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { RetryableHttpException } from '../common/errors';
import { HttpErrorBody } from '../common/http-error.dto';
import { BroadcastApiKeyGuard } from './broadcast-api-key.guard';
import { BroadcastRequest } from './broadcast.dto';
import { BroadcastService, InvalidBroadcastError } from './broadcast.service';
import { BroadcastUnavailableError } from '../core/broker/broker.interface';
import { HttpThrottlerGuard } from '../rate-limit/http-throttler.guard';
import { ThrottledBy, Throttlers } from '../rate-limit/rate-limit.module';
import { SwitchboardController } from '../common/switchboard-controller';
import { JsonLimitsGuard } from '../common/json-limits.guard';

/** The broadcast API's route, as the router registers it. */
export const BROADCAST_API_ROUTE = '/api/broadcast';

/**
 * `POST /api/broadcast`: the publish API for backends that are not Nest modules. A thin layer over
 * `BroadcastService`. Registered only while `BROADCAST_API_KEY` is set (`BroadcastModule.forRoot`);
 * its guard checks the key on the matched route, then the caller's rate: this handler only ever
 * sees authorized requests, at most `BROADCAST_API_CALLS_PER_SECOND` per calling address per
 * instance (`429` with `Retry-After` beyond).
 */
@ApiTags('broadcast')
@SwitchboardController()
@Controller('api')
export class BroadcastController {
  constructor(private readonly broadcast: BroadcastService) {}

  @Post('broadcast')
  @ApiOperation({
    summary: 'Publishes an event to a user, some users, a room or everyone',
    description:
      'For backends that are not Nest modules; the same as BroadcastService. Only while BROADCAST_API_KEY is set.',
  })
  @ApiBearerAuth('broadcast-key')
  @ApiAcceptedResponse({ description: 'Published' })
  @ApiBadRequestResponse({ description: 'The body names the problem', type: HttpErrorBody })
  @ApiUnauthorizedResponse({
    description: 'Missing or wrong BROADCAST_API_KEY',
    type: HttpErrorBody,
  })
  @ApiNotFoundResponse({ description: 'BROADCAST_API_KEY is unset', type: HttpErrorBody })
  @ApiTooManyRequestsResponse({
    description: 'More than BROADCAST_API_CALLS_PER_SECOND from this address',
    type: HttpErrorBody,
  })
  @ApiServiceUnavailableResponse({
    description: 'Redis is unreachable; see Retry-After',
    type: HttpErrorBody,
  })
  @HttpCode(HttpStatus.ACCEPTED)
  @UseGuards(BroadcastApiKeyGuard, JsonLimitsGuard, HttpThrottlerGuard)
  @ThrottledBy(Throttlers.BroadcastApi)
  async publish(@Body() body: BroadcastRequest): Promise<void> {
    const { to, event, data } = body;
    const targets = [to.userId, to.userIds, to.room, to.all].filter((value) => value !== undefined);
    if (targets.length !== 1) {
      throw new BadRequestException(['to must name exactly one of userId, userIds, room or all']);
    }
    try {
      if (to.userId !== undefined) {
        await this.broadcast.toUser(to.userId, event, data);
      } else if (to.userIds !== undefined) {
        await this.broadcast.toUsers(to.userIds, event, data);
      } else if (to.room !== undefined) {
        await this.broadcast.toRoom(to.room, event, data);
      } else {
        await this.broadcast.toAll(event, data);
      }
    } catch (error) {
      if (error instanceof InvalidBroadcastError) {
        throw new BadRequestException([error.message]);
      }
      if (error instanceof BroadcastUnavailableError) {
        throw new RetryableHttpException(HttpStatus.SERVICE_UNAVAILABLE, error.message, 2);
      }
      throw error;
    }
  }
}
