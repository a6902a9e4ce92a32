import { timingSafeEqual } from 'node:crypto';
import {
  BadRequestException,
  Body,
  Controller,
  Headers,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Post,
  UnauthorizedException,
} from '@nestjs/common';
import { bearerToken } from '../common/bearer';
import { RetryableHttpException } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { BroadcastRequest } from './broadcast.dto';
import { BroadcastService, InvalidBroadcastError } from './broadcast.service';
import { BroadcastUnavailableError } from './broker.interface';

/**
 * `POST /api/broadcast`: the publish API for backends that are not Nest modules. A thin layer over
 * `BroadcastService`; exists only when `BROADCAST_API_KEY` is set.
 */
@Controller('api')
export class BroadcastController {
  private readonly apiKey: Buffer | null;

  constructor(
    private readonly broadcast: BroadcastService,
    config: AppConfig,
  ) {
    this.apiKey = config.broadcastApiKey ? Buffer.from(config.broadcastApiKey) : null;
  }

  @Post('broadcast')
  @HttpCode(HttpStatus.ACCEPTED)
  async publish(
    @Headers('authorization') authorization: string | undefined,
    @Body() body: BroadcastRequest,
  ): Promise<void> {
    if (this.apiKey === null) {
      throw new NotFoundException('Cannot POST /api/broadcast');
    }
    const given = Buffer.from(bearerToken(authorization) ?? '');
    if (given.length !== this.apiKey.length || !timingSafeEqual(given, this.apiKey)) {
      throw new UnauthorizedException('missing or wrong Authorization: Bearer <BROADCAST_API_KEY>');
    }
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
