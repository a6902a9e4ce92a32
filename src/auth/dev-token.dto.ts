import { IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';

export const DEV_TOKEN_DEFAULT_TTL_S = 3600;
export const DEV_TOKEN_MAX_TTL_S = 86_400;

export class DevTokenRequest {
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, {
    message:
      'userId must be 1-64 letters, digits, "_", ".", "@" or "-", starting with a letter or digit',
  })
  userId!: string;

  @IsOptional()
  @IsString()
  @Length(1, 64)
  name?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(DEV_TOKEN_MAX_TTL_S)
  ttl?: number;
}
