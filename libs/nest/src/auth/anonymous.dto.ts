import { ApiProperty } from '@nestjs/swagger';
import type { AnonymousResponse } from '@switchboard/protocol';
import { IsString, Length } from 'class-validator';
import { MAX_ANONYMOUS_NAME_LENGTH } from './anonymous-identities';

export class AnonymousRequest {
  @ApiProperty({
    minLength: 1,
    maxLength: MAX_ANONYMOUS_NAME_LENGTH,
    example: 'Ada',
    description: 'The name others see (control and bidi characters are removed)',
  })
  @IsString()
  @Length(1, MAX_ANONYMOUS_NAME_LENGTH)
  name!: string;
}

/** `POST /auth/anonymous`'s answer, for the OpenAPI document. */
export class AnonymousResponseBody implements AnonymousResponse {
  @ApiProperty({ example: 'anon:3q2-7wQ1hY5d0a8pXkJbZg' })
  userId!: string;

  @ApiProperty({ example: 'Ada' })
  name!: string;

  @ApiProperty({
    description: 'Seconds the identity lives unused (ANONYMOUS_TTL_S); every use renews it',
    example: 86_400,
  })
  expiresIn!: number;
}
