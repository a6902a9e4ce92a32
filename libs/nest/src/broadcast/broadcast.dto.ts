import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  Equals,
  IsDefined,
  IsObject,
  IsOptional,
  IsString,
  Length,
  ValidateNested,
} from 'class-validator';

export const MAX_BROADCAST_USERS = 1000;

/** Exactly one of `userId`, `userIds`, `room` or `all: true`. */
export class BroadcastTarget {
  @ApiPropertyOptional({ description: 'Every socket of one user', minLength: 1, maxLength: 256 })
  @IsOptional()
  @IsString()
  @Length(1, 256)
  userId?: string;

  @ApiPropertyOptional({
    description: 'Every socket of these users',
    type: [String],
    minItems: 1,
    maxItems: MAX_BROADCAST_USERS,
  })
  @IsOptional()
  @IsString({ each: true })
  @Length(1, 256, { each: true })
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BROADCAST_USERS)
  userIds?: string[];

  @ApiPropertyOptional({ description: "Every member of a room (the room's stream)", maxLength: 64 })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  room?: string;

  @ApiPropertyOptional({ description: 'Every socket on every instance', enum: [true] })
  @IsOptional()
  @Equals(true)
  all?: true;
}

export class BroadcastRequest {
  @ApiProperty({
    description: 'Exactly one of userId, userIds, room or all',
    type: BroadcastTarget,
  })
  @IsObject()
  @ValidateNested()
  @Type(() => BroadcastTarget)
  to!: BroadcastTarget;

  @ApiProperty({
    description: "The event type; not one of the protocol's (room., presence., session., …)",
    example: 'invoice.paid',
  })
  @IsString()
  event!: string;

  @ApiProperty({
    description: "Any JSON value, sent as the frame's data",
    example: { id: 'inv-7' },
  })
  @IsDefined()
  data!: unknown;
}
