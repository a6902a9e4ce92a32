import { redisErrorKind } from './redis.connections';

describe('redisErrorKind', () => {
  it.each([
    [new Error('CLUSTERDOWN The cluster is down'), 'cluster_down'],
    [new Error('TRYAGAIN Multiple keys request during rehashing of slot'), 'try_again'],
    [new Error('MOVED 3999 127.0.0.1:6381'), 'redirect'],
    [
      new Error('Too many Cluster redirections. Last error: Error: Connection is closed.'),
      'redirect',
    ],
    [new Error("CROSSSLOT Keys in request don't hash to the same slot"), 'cross_slot'],
    [new Error('Command timed out'), 'timeout'],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }),
      'connection',
    ],
    [new Error("Stream isn't writeable and enableOfflineQueue options is false"), 'connection'],
    [new Error('Connection is closed.'), 'connection'],
    [new Error('ERR unknown command'), 'other'],
    ['not even an error', 'other'],
  ])('%s is %s', (error, kind) => {
    expect(redisErrorKind(error)).toBe(kind);
  });
});
