import { MemoryRevocationStore } from '../src/auth/memory-revocation.store';
import { MemoryRateLimiter } from '../src/rate-limit/memory-rate-limiter';
import { MemoryConnectionRegistry } from '../src/realtime/memory-connection-registry';
import { MemoryTicketStore } from '../src/tickets/memory-ticket.store';
import { describeConnectionRegistry } from './contracts/connection-registry.contract';
import { describeRateLimiter } from './contracts/rate-limiter.contract';
import { describeRevocationStore } from './contracts/revocation-store.contract';
import { describeTicketStore } from './contracts/ticket-store.contract';

describeTicketStore('memory', () => {
  const store = new MemoryTicketStore();
  return { store, close: () => store.onApplicationShutdown() };
});
describeRateLimiter('memory', () => {
  const limiter = new MemoryRateLimiter();
  return { limiter, close: () => limiter.onApplicationShutdown() };
});
describeRevocationStore('memory', () => {
  const store = new MemoryRevocationStore();
  return { store, close: () => store.onApplicationShutdown() };
});
describeConnectionRegistry('memory', () => ({
  registry: new MemoryConnectionRegistry(),
  close: () => undefined,
}));
