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
  @IsOptional()
  @IsString()
  @Length(1, 256)
  userId?: string;

  @IsOptional()
  @IsString({ each: true })
  @Length(1, 256, { each: true })
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_BROADCAST_USERS)
  userIds?: string[];

  @IsOptional()
  @IsString()
  @Length(1, 64)
  room?: string;

  @IsOptional()
  @Equals(true)
  all?: true;
}

export class BroadcastRequest {
  @IsObject()
  @ValidateNested()
  @Type(() => BroadcastTarget)
  to!: BroadcastTarget;

  @IsString()
  event!: string;

  @IsDefined()
  data!: unknown;
}
