import type * as Protocol from '@app/protocol';
import { IsString, Length, Matches } from 'class-validator';

/** Room names: `^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$` (SPEC §6). */
export const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
export const MAX_TEXT_LENGTH = 4000;
const MAX_TOKEN_LENGTH = 8192;

const roomMessage = {
  message:
    'room must be 1-64 letters, digits, "_", ".", ":" or "-", starting with a letter or digit',
};

/** `ping` carries no data. */
export class PingData {}

/** The validation of the protocol's payloads; the shapes themselves come from `@app/protocol`. */
export class RoomData implements Protocol.RoomData {
  @IsString()
  @Matches(ROOM_NAME, roomMessage)
  room!: string;
}

export class RoomMessageData implements Protocol.RoomMessageRequest {
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
