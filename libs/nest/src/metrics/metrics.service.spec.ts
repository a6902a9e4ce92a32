import { loadConfig } from '../config/config.schema';
import { MetricsService } from './metrics.service';

describe('MetricsService connection spike', () => {
  beforeEach(() => jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') }));
  afterEach(() => jest.useRealTimers());

  it('raises the gauge past CONNECTION_SPIKE_PER_10S and clears it once attempts fall', async () => {
    const metrics = new MetricsService(loadConfig({ CONNECTION_SPIKE_PER_10S: '3' }));
    const spike = async () =>
      (await metrics.registry.getSingleMetric('ws_connection_spike')?.get())?.values[0]?.value;
    try {
      for (let i = 0; i < 3; i++) {
        metrics.handshake('accepted');
      }
      expect(await spike()).toBe(0);
      metrics.handshake('unauthorized');
      expect(await spike()).toBe(1);
      jest.advanceTimersByTime(5_000);
      expect(await spike()).toBe(1);
      jest.advanceTimersByTime(6_000);
      expect(await spike()).toBe(0);
    } finally {
      metrics.onApplicationShutdown();
    }
  });
});
