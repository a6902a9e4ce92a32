import { Clock } from '../../libs/nest/src/config/clock';
import { AuthService } from '../../libs/nest/src/auth/auth.service';
import { AnonymousIdentities } from '../../libs/nest/src/auth/anonymous-identities';
import { CookieSessions, NO_HOST_SESSIONS } from '../../libs/nest/src/auth/cookie-sessions';
import { MemoryRevocationStore } from '../../libs/nest/src/auth/memory-revocation.store';
import { Revocations } from '../../libs/nest/src/auth/revocations.service';
import { JwtService } from '@nestjs/jwt';
import { jwtModuleOptions, TokenVerifier } from '../../libs/nest/src/auth/token-verifier.service';
import type { AppConfig } from '../../libs/nest/src/config/app-config';
import { loadConfig } from '../../libs/nest/src/config/config.schema';
import { Instance } from '../../libs/nest/src/config/instance';
import { streamOptions } from '../../libs/nest/src/core/broker/broker.interface';
import { Streams } from '../../libs/nest/src/core/streams';
import { MemoryBroker } from '../../libs/nest/src/core/broker/memory.broker';
import { Connection } from '../../libs/nest/src/core/connection';
import { Hub } from '../../libs/nest/src/core/hub';
import { Node } from '../../libs/nest/src/core/node';
import type { Session } from '../../libs/nest/src/core/session';
import { MetricsService } from '../../libs/nest/src/metrics/metrics.service';
import { EmbeddedLease } from '../../libs/nest/src/redis/embedded-lease';
import { AdmissionGate } from '../../libs/nest/src/core/admission-gate';
import { MemoryRateLimiter } from '../../libs/nest/src/rate-limit/memory-rate-limiter.store';
import { MemoryTicketStore } from '../../libs/nest/src/tickets/memory-ticket.store';
import { TicketsService } from '../../libs/nest/src/tickets/tickets.service';

export const UNIT_SECRET = 'unit-test-secret-that-is-long-enough-0123456789';

/**
 * A socket for unit specs: records what it was sent and how it was closed, with ws's readyState
 * numbers. It stands in for the network only; everything above it is the real code.
 */
export class FakeSocket {
  readyState = 1;
  bufferedAmount = 0;
  readonly sent: string[] = [];
  closed: { code: number; reason: string } | null = null;
  terminated = false;
  pings = 0;

  send(frame: string | Buffer): void {
    this.sent.push(frame.toString());
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
    this.readyState = 2;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }
  ping(): void {
    this.pings += 1;
  }
  /** The frames sent, parsed. */
  frames(): Array<{ type: string; data?: unknown; id?: string }> {
    return this.sent.map((frame) => JSON.parse(frame) as { type: string; data?: unknown });
  }
}

/**
 * The embedded-mode collaborators, wired by hand as Nest would: real in-memory stores, the
 * memory broker, the embedded lease, the node and the hub. `dispose` clears their timers.
 */
export function unitKit(env: Record<string, string> = {}) {
  const config: AppConfig = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: UNIT_SECRET,
    ALLOWED_ORIGINS: 'http://app.test',
    ...env,
  });
  const metrics = new MetricsService(config);
  const hub = new Hub();
  const gate = new AdmissionGate(config, hub, metrics);
  const clock = new Clock();
  const broker = new MemoryBroker(streamOptions(config.history), () => clock.now());
  const instance = new Instance();
  const node = new Node(broker, hub, instance, metrics, config);
  const streams = new Streams(broker, node, metrics, config);
  const revocationStore = new MemoryRevocationStore();
  const lease = new EmbeddedLease(instance.id);
  const revocations = new Revocations(revocationStore, node, lease);
  const jwt = new JwtService(jwtModuleOptions(config));
  const verifier = new TokenVerifier(jwt, clock, config);
  const auth = new AuthService(verifier, revocations, clock, config);
  const limiter = new MemoryRateLimiter();
  const ticketStore = new MemoryTicketStore(clock);
  const tickets = new TicketsService(ticketStore, config, metrics, lease);
  const anonymous = new AnonymousIdentities(config, clock);
  const cookies = new CookieSessions(config, auth, anonymous, clock, NO_HOST_SESSIONS);
  let seq = 0;

  /** A connection of `userId` on a fake socket, held by the hub (as the gateway adds it). */
  function connect(userId: string, session: Partial<Session> = {}) {
    const socket = new FakeSocket();
    const admission = hub.reserve('10.0.0.1', 1000, 1000);
    if (typeof admission === 'string') {
      throw new Error(`no admission: ${admission}`);
    }
    const connection = new Connection({
      id: `c${++seq}`,
      socket,
      session: {
        userId,
        name: userId,
        sessionId: `s-${userId}-${seq}`,
        expiresAt: Date.now() + 3600_000,
        rooms: null,
        ...session,
      },
      ip: '10.0.0.1',
      connectedAt: Date.now(),
      sendBufferMaxBytes: 1 << 20,
      messagesPerWindow: 100,
      messageWindowMs: 10_000,
      metrics,
    });
    hub.add(connection, admission);
    return { connection, socket };
  }

  return {
    config,
    clock,
    metrics,
    streams,
    hub,
    gate,
    broker,
    instance,
    lease,
    node,
    revocations,
    auth,
    verifier,
    jwt,
    limiter,
    tickets,
    anonymous,
    cookies,
    connect,
    async init(): Promise<void> {
      await node.onModuleInit();
      revocations.onModuleInit();
    },
    dispose(): void {
      gate.onApplicationShutdown();
      metrics.onApplicationShutdown();
      broker.onApplicationShutdown();
      revocations.onApplicationShutdown();
      limiter.onApplicationShutdown();
      ticketStore.onApplicationShutdown();
      revocationStore.onApplicationShutdown();
    },
  };
}
