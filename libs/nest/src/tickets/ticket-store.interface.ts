import type { Session } from '../core/session';

/** What a ticket stands for: the session it was issued to, and when the ticket expires. */
export interface TicketClaims extends Session {
  /** When the ticket stops being good, in ms since the epoch (a ticket given back keeps it). */
  ticketExpiresAt: number;
}

/**
 * Single-use WebSocket tickets, shared by every instance. Only the ticket's SHA-256 is stored.
 *
 * - `put` stores the claims for `ttlMs`.
 * - `take` returns the claims and deletes the ticket in one atomic step: of any number of
 *   concurrent `take`s of one ticket, on any instances, exactly one gets the claims.
 * - While the backing store is unreachable, both reject with `StoreUnavailableError`: tickets
 *   fail closed.
 */
export interface TicketStore {
  put(hash: string, claims: TicketClaims, ttlMs: number): Promise<void>;
  take(hash: string): Promise<TicketClaims | null>;
}
export const TicketStore = Symbol('TicketStore');
