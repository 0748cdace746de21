import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { RequestRateLimiter } from '../../lib/source/request-rate-limiter.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

/** A limiter on a hand-moved clock; records each wait it asks for instead of waiting. */
function manual(qps: number, burst: number) {
  let now = 1_000_000;
  const waits: number[] = [];
  const limiter = new RequestRateLimiter({ qps, burst, now: () => now, sleep: async (ms) => void waits.push(ms) });
  return { limiter, waits, advance: (ms: number) => void (now += ms) };
}

test('a full bucket lets a burst through, then one request per 1/qps, in the order they came', async (t) => {
  const { limiter, waits, advance } = manual(2, 3);
  for (let i = 0; i < 3; i++) await limiter.take();
  t.deepEqual(waits, []);
  await limiter.take();
  await limiter.take();
  t.deepEqual(waits, [500, 1000], 'the 4th waits one token (500 ms at 2/s), the 5th two');
  advance(10_000); // long idle: the bucket refills, but only up to the burst
  for (let i = 0; i < 3; i++) await limiter.take();
  t.deepEqual(waits, [500, 1000]);
  await limiter.take();
  t.deepEqual(waits, [500, 1000, 500]);
});

test('qps and burst are checked', (t) => {
  const err = t.throws(() => new RequestRateLimiter({ qps: 0, burst: 0.5 }), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['qps: must be above 0, got 0', 'burst: must be a positive integer, got 0.5']);
});

test("the real client's requests wait for tokens: past the burst, nothing reaches the API server", async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  // One token per 1000 s: the third request waits far beyond the test.
  const limiter = new RequestRateLimiter({ qps: 0.001, burst: 2 });
  const core = limiter.limit(kc).makeApiClient(CoreV1Api);
  const calls = [0, 1, 2].map(() => core.listServiceForAllNamespaces());
  await Promise.all(calls.slice(0, 2));
  await waitFor('the third request to wait for a token', () => limiter.waiting === 1);
  t.is(api.requests.length, 2);
  t.is(limiter.waiting, 1);
});
