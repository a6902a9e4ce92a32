import { ApiProperty } from '@nestjs/swagger';

/** The body of every HTTP error: Nest's shape, with `message` naming the problem. */
export class HttpErrorBody {
  @ApiProperty({ example: 400 })
  statusCode!: number;

  @ApiProperty({ example: 'Bad Request' })
  error!: string;

  @ApiProperty({
    oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    example: ['userId must be a string'],
  })
  message!: string | string[];
}
