import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { DevTokenResponse } from '@switchboard/protocol';
import { IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';

export const DEV_TOKEN_DEFAULT_TTL_S = 3600;
export const DEV_TOKEN_MAX_TTL_S = 86_400;

export class DevTokenRequest {
  @ApiProperty({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$', example: 'alice' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, {
    message:
      'userId must be 1-64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit',
  })
  userId!: string;

  @ApiPropertyOptional({ minLength: 1, maxLength: 64, example: 'Alice' })
  @IsOptional()
  @IsString()
  @Length(1, 64)
  name?: string;

  @ApiPropertyOptional({
    description: 'Token lifetime in seconds',
    minimum: 1,
    maximum: DEV_TOKEN_MAX_TTL_S,
    default: DEV_TOKEN_DEFAULT_TTL_S,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(DEV_TOKEN_MAX_TTL_S)
  ttl?: number;
}

/** `POST /auth/dev-token`'s answer, for the OpenAPI document. */
export class DevTokenResponseBody implements DevTokenResponse {
  @ApiProperty({ description: 'An HS256 access token signed with JWT_SECRET' })
  accessToken!: string;

  @ApiProperty({ enum: ['Bearer'] })
  tokenType!: 'Bearer';

  @ApiProperty({ description: 'Seconds until the token expires', example: DEV_TOKEN_DEFAULT_TTL_S })
  expiresIn!: number;
}
