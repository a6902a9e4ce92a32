import {
  Controller,
  Headers,
  HttpStatus,
  Ip,
  Logger,
  type MessageEvent,
  Query,
  Sse,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { concat, map, type Observable, of } from 'rxjs';
import { MAX_USER_ID_LENGTH } from '@switchboard/protocol';
import { RetryableHttpException } from '../../common/errors';
import { HttpErrorBody } from '../../common/http-error.dto';
import { SwitchboardController } from '../../common/switchboard-controller';
import { BroadcastUnavailableError } from '../../core/broker/broker.interface';
import { AdminTokenGuard } from './admin-token.guard';
import { MAX_TRACE_SECONDS, Tracer } from './tracer';

export class TraceQuery {
  @IsString()
  @Length(1, MAX_USER_ID_LENGTH)
  userId!: string;

  /** How long to follow the user, in seconds (1–60, default 60). */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_TRACE_SECONDS)
  seconds?: number;

  /** `true`: the frames' text too; otherwise their sizes only. */
  @IsOptional()
  @IsIn(['true', 'false'])
  payloads?: string;
}

/**
 * `GET /admin/trace?userId=…`: for support staff chasing "I did not get it", every frame to and
 * from one user's connections on every instance, as Server-Sent Events (`event: frame`,
 * `event: dropped` when more than `MAX_TRACED_PER_SECOND` a second passed on an instance, then
 * `event: end`), for at most 60 s. Sizes only unless `payloads=true`. Behind `ADMIN_TOKEN`; each
 * use is logged with who asked.
 */
@ApiTags('admin')
@ApiBearerAuth('admin-token')
@SwitchboardController()
@UseGuards(AdminTokenGuard)
@Controller('admin')
export class TraceController {
  private readonly logger = new Logger(TraceController.name);

  constructor(private readonly tracer: Tracer) {}

  @Sse('trace')
  @ApiOperation({
    summary: "Follow one user's frames on every instance",
    description:
      'A text/event-stream of `frame` events ({ at, instance, connectionId, transport, direction, type, bytes, payload? }), `dropped` events, and `end`. Exists only while ADMIN_TOKEN is set.',
  })
  @ApiProduces('text/event-stream')
  @ApiOkResponse({ description: 'The trace, as Server-Sent Events' })
  @ApiUnauthorizedResponse({ type: HttpErrorBody, description: 'Without ADMIN_TOKEN' })
  @ApiNotFoundResponse({ type: HttpErrorBody, description: 'ADMIN_TOKEN is not set' })
  @ApiServiceUnavailableResponse({ type: HttpErrorBody, description: 'Redis is out of reach' })
  async trace(
    @Query() query: TraceQuery,
    @Ip() ip: string,
    @Headers('x-admin-user') asker: string | undefined,
  ): Promise<Observable<MessageEvent>> {
    const seconds = query.seconds ?? MAX_TRACE_SECONDS;
    const payloads = query.payloads === 'true';
    this.logger.log({
      msg: 'trace started',
      userId: query.userId,
      seconds,
      payloads,
      askedBy: asker?.slice(0, 128) ?? 'unnamed (send X-Admin-User)',
      ip,
    });
    let frames: Awaited<ReturnType<Tracer['trace']>>;
    try {
      frames = await this.tracer.trace(query.userId, seconds, payloads);
    } catch (error) {
      if (error instanceof BroadcastUnavailableError) {
        throw new RetryableHttpException(
          HttpStatus.SERVICE_UNAVAILABLE,
          'the other instances cannot be told: Redis is out of reach',
          2,
        );
      }
      throw error;
    }
    return concat(
      frames.pipe(
        map((event): MessageEvent =>
          'dropped' in event ? { type: 'dropped', data: event } : { type: 'frame', data: event },
        ),
      ),
      of<MessageEvent>({ type: 'end', data: { userId: query.userId } }),
    );
  }
}
