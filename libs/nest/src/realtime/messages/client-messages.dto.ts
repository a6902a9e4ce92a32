import type * as Protocol from '@switchboard/protocol';
import { MAX_USER_ID_LENGTH } from '@switchboard/protocol';
import {
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateBy,
} from 'class-validator';

/** Room names: `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$` (docs/protocol.md, Messages). */
export const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
export const MAX_TEXT_LENGTH = 4000;
const MAX_TOKEN_LENGTH = 8192;

const roomMessage = {
  message:
    'room must be 1-64 letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
};

/** Whether a text's first UTF-16 unit is a character of its own (no surrogate, no variation selector). */
function startsPlain(text: string): boolean {
  const first = text.charCodeAt(0);
  return (first < 0xd800 || first > 0xdfff) && first !== 0xfe0e && first !== 0xfe0f;
}

/** `ping` carries no data. */
export class PingData {}

/** The validation of the protocol's payloads; the shapes themselves come from `@switchboard/protocol`. */
export class RoomData implements Protocol.RoomData {
  @IsString()
  @Matches(ROOM_NAME, roomMessage)
  room!: string;
}

/** A stream position as a client sends it back: `{ epoch: string (1–64), offset: integer ≥ 0 }`. */
function IsStreamPosition(): PropertyDecorator {
  return ValidateBy({
    name: 'isStreamPosition',
    validator: {
      validate: (value: unknown): boolean => {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          return false;
        }
        const { epoch, offset, ...rest } = value as Record<string, unknown>;
        return (
          Object.keys(rest).length === 0 &&
          typeof epoch === 'string' &&
          epoch.length >= 1 &&
          epoch.length <= 64 &&
          Number.isSafeInteger(offset) &&
          (offset as number) >= 0
        );
      },
      defaultMessage: () =>
        'since must be { epoch: string of 1-64 characters, offset: whole number >= 0 }, as received',
    },
  });
}

export class RoomJoinData extends RoomData implements Protocol.RoomJoinRequest {
  @IsOptional()
  @IsStreamPosition()
  since?: Protocol.StreamPosition;
}

export const MAX_HISTORY_LIMIT = 100;
export const DEFAULT_HISTORY_LIMIT = 50;
const BEFORE_MESSAGE = `before must be an offset (a whole number from 1 to ${Number.MAX_SAFE_INTEGER})`;

export class RoomHistoryData extends RoomData implements Protocol.RoomHistoryRequest {
  @IsOptional()
  @IsInt({ message: 'limit must be a whole number from 1 to 100' })
  @Min(1, { message: 'limit must be a whole number from 1 to 100' })
  @Max(MAX_HISTORY_LIMIT, { message: 'limit must be a whole number from 1 to 100' })
  limit?: number;

  @IsOptional()
  @IsInt({ message: BEFORE_MESSAGE })
  @Min(1, { message: BEFORE_MESSAGE })
  @Max(Number.MAX_SAFE_INTEGER, { message: BEFORE_MESSAGE })
  before?: number;
}

export const MAX_PRESENCE_PAGE = 500;
const PAGE_LIMIT_MESSAGE = `limit must be a whole number from 1 to ${MAX_PRESENCE_PAGE}`;

export class PresenceListData extends RoomData implements Protocol.PresenceListRequest {
  @IsOptional()
  @IsString({ message: 'after must be a member id, as a page\'s "next" gave it' })
  @Length(1, MAX_USER_ID_LENGTH, {
    message: `after must be a member id of 1-${MAX_USER_ID_LENGTH} characters, as a page's "next" gave it`,
  })
  after?: string;

  @IsOptional()
  @IsInt({ message: PAGE_LIMIT_MESSAGE })
  @Min(1, { message: PAGE_LIMIT_MESSAGE })
  @Max(MAX_PRESENCE_PAGE, { message: PAGE_LIMIT_MESSAGE })
  limit?: number;
}

export class RoomMessageData implements Protocol.RoomMessageRequest {
  /**
   * The decorators' checks without class-validator (a chat's messages are most of what clients
   * send). `Length` counts a surrogate pair or a variation selector as nothing extra, so a text
   * whose first unit is one of those is left to the full validation.
   */
  static accepts({ room, text }: Record<string, unknown>): boolean {
    return (
      typeof room === 'string' &&
      ROOM_NAME.test(room) &&
      typeof text === 'string' &&
      text.length >= 1 &&
      text.length <= MAX_TEXT_LENGTH &&
      startsPlain(text)
    );
  }

  @IsString()
  @Matches(ROOM_NAME, roomMessage)
  room!: string;

  @IsString()
  @Length(1, MAX_TEXT_LENGTH)
  text!: string;
}

export class SessionRefreshData implements Protocol.SessionRefreshRequest {
  @IsString()
  @Length(1, MAX_TOKEN_LENGTH)
  token!: string;
}
