import { loadConfig } from '../config/config.schema';
import {
  type AdmissionPass,
  type AdmissionRefusal,
  AdmissionGate,
  MAX_EVENT_LOOP_DELAY_MS,
  MAX_HANDSHAKES_IN_PROGRESS,
  retryAfterSeconds,
} from './admission-gate';
import { MetricsService } from '../metrics/metrics.service';
import { Hub } from './hub';

const disposers: Array<() => void> = [];
afterAll(() => disposers.splice(0).forEach((dispose) => dispose()));

function gate(env: Record<string, string> = {}) {
  const hub = new Hub();
  const config = loadConfig({ NODE_ENV: 'test', ...env });
  const metrics = new MetricsService(config);
  const subject = new AdmissionGate(config, hub, metrics);
  subject.onApplicationBootstrap();
  disposers.push(() => subject.onApplicationShutdown());
  disposers.push(() => metrics.onApplicationShutdown());
  const refusals: string[] = [];
  subject.onRefusal((reason) => refusals.push(reason));
  return { hub, subject, refusals };
}

const isPass = (answer: AdmissionPass | AdmissionRefusal): answer is AdmissionPass =>
  answer.refused === undefined;

describe('AdmissionGate', () => {
  const gates: AdmissionGate[] = [];
  afterEach(() => gates.splice(0).forEach((g) => g.onApplicationShutdown()));

  it(`lets ${MAX_HANDSHAKES_IN_PROGRESS} handshakes in at once, then refuses for capacity`, () => {
    const { subject, refusals } = gate();
    gates.push(subject);
    const passes = Array.from({ length: MAX_HANDSHAKES_IN_PROGRESS }, () => subject.enter());
    expect(passes.every(isPass)).toBe(true);
    expect(subject.handshakesInProgress).toBe(MAX_HANDSHAKES_IN_PROGRESS);
    const refused = subject.enter();
    expect(refused).toMatchObject({ refused: 'capacity' });
    expect(refusals).toEqual(['capacity']);
    (passes[0] as AdmissionPass).release();
    (passes[0] as AdmissionPass).release(); // idempotent
    expect(subject.handshakesInProgress).toBe(MAX_HANDSHAKES_IN_PROGRESS - 1);
    expect(isPass(subject.enter())).toBe(true);
  });

  it(`refuses for capacity while the event loop is more than ${MAX_EVENT_LOOP_DELAY_MS} ms behind, then admits again`, async () => {
    const { subject, refusals } = gate();
    gates.push(subject);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await sleep(120); // a few probes on an idle loop
    expect(isPass(subject.enter())).toBe(true);
    const blockedUntil = performance.now() + 1_000;
    while (performance.now() < blockedUntil) {
      // the instance is busy: one turn of the event loop takes a second
    }
    await sleep(5); // the probe, overdue, runs first
    expect(subject.eventLoopDelayMs).toBeGreaterThan(MAX_EVENT_LOOP_DELAY_MS);
    expect(subject.enter()).toMatchObject({ refused: 'capacity' });
    expect(refusals).toEqual(['capacity']);
    await sleep(600); // the smoothed delay decays on an idle loop
    expect(subject.eventLoopDelayMs).toBeLessThan(MAX_EVENT_LOOP_DELAY_MS);
    expect(isPass(subject.enter())).toBe(true);
  });

  it('spreads the refused over a time sized to the backlog, at random', () => {
    const { subject } = gate();
    gates.push(subject);
    const now = Date.now();
    for (let i = 0; i < MAX_HANDSHAKES_IN_PROGRESS; i++) {
      subject.enter(now);
    }
    const small = subject.enter(now) as AdmissionRefusal;
    for (let i = 0; i < 2000; i++) {
      subject.enter(now);
    }
    const waits = Array.from(
      { length: 200 },
      () => (subject.enter(now) as AdmissionRefusal).retryAfterMs,
    );
    // 2,456 waiting at an assumed 200 a second: about 12 s to serve them all.
    expect(Math.max(...waits)).toBeGreaterThan(small.retryAfterMs);
    expect(Math.max(...waits)).toBeGreaterThan(8_000);
    expect(Math.max(...waits)).toBeLessThanOrEqual(30_000);
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(250);
    expect(new Set(waits).size).toBeGreaterThan(150); // jittered, not one instant for all
  });

  it('refuses a pass whose work would start after ADMISSION_MAX_WAIT_MS, and frees its place', () => {
    const { subject, refusals } = gate({ ADMISSION_MAX_WAIT_MS: '1000' });
    gates.push(subject);
    const fresh = subject.enter() as AdmissionPass;
    expect(fresh.check()).toBeNull();
    const old = subject.enter(Date.now() - 1500) as AdmissionPass;
    expect(old.check()).toMatchObject({ refused: 'age' });
    expect(refusals).toEqual(['age']);
    expect(subject.handshakesInProgress).toBe(1);
    old.release(); // after its refusal: nothing more to free
    expect(subject.handshakesInProgress).toBe(1);
  });

  it('refuses everything while the instance drains, with a short wait', () => {
    const { hub, subject } = gate();
    gates.push(subject);
    hub.startDraining();
    const refusal = subject.enter() as AdmissionRefusal;
    expect(refusal.refused).toBe('draining');
    expect(refusal.retryAfterMs).toBeLessThanOrEqual(1_250);
  });

  it('names Retry-After in whole seconds, at least 1', () => {
    expect([1, 999, 1000, 1001, 29_500].map(retryAfterSeconds)).toEqual([1, 1, 1, 2, 30]);
  });
});
