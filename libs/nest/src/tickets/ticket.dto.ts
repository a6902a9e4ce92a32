import { ApiProperty } from '@nestjs/swagger';
import type { TicketResponse } from '@switchboard/protocol';

/** `POST /auth/ws-ticket`'s answer, for the OpenAPI document. */
export class TicketResponseBody implements TicketResponse {
  @ApiProperty({ description: 'Single-use ticket: 256 random bits, base64url', example: 'q3J…' })
  ticket!: string;

  @ApiProperty({ description: 'Seconds until the ticket expires (TICKET_TTL_S)', example: 30 })
  expiresIn!: number;

  @ApiProperty({
    description: 'The WebSocket URL to open, ticket included',
    example: 'wss://rt.example.com/ws?ticket=q3J…',
  })
  url!: string;
}
