import test from 'ava';
import { SyncRunner } from '../../lib/agent/sync-runner.js';
import { waitFor } from '../helpers/wait-for.js';

/** Timers may fire a little early against performance.now(): the slack allowed for it. */
const TIMER_SLACK_MS = 5;

test("with runs asked for all the time, the k-th run starts no sooner than (k - burst) minimum intervals after the first, as kube-proxy's token bucket allows", async (t) => {
  const starts: number[] = [];
  const MIN = 150;
  const runner = new SyncRunner({
    fn: async () => {
      starts.push(performance.now());
      runner.run(); // a change arrives during every run
    },
    minIntervalMs: MIN,
    maxIntervalMs: 60_000,
    burst: 2,
  });
  t.teardown(() => runner.destroy());
  runner.run();
  await waitFor('seven runs', () => starts.length >= 7, 10_000);
  runner.destroy();
  for (let k = 3; k <= starts.length; k++) {
    const since = starts[k - 1]! - starts[0]!;
    t.true(since >= (k - 2) * MIN - TIMER_SLACK_MS, `run ${k} started ${since.toFixed(0)} ms after the first`);
  }
});

test('the first change after a quiet period runs at once, even after a burst used every token', async (t) => {
  const starts: number[] = [];
  const MIN = 200;
  const runner = new SyncRunner({ fn: async () => void starts.push(performance.now()), minIntervalMs: MIN, maxIntervalMs: 60_000, burst: 2 });
  t.teardown(() => runner.destroy());
  runner.run();
  await runner.idle();
  runner.run();
  await runner.idle();
  // The quiet period itself is what is tested: two intervals refill both tokens.
  await new Promise((r) => setTimeout(r, 2 * MIN + 50));
  const asked = performance.now();
  runner.run();
  t.is(starts.length, 3, 'the run started within the call');
  t.true(starts[2]! - asked < MIN / 2);
  // And the bucket is full again: a second change right after also runs at once.
  await runner.idle();
  runner.run();
  t.is(starts.length, 4);
});

test('a run that has to wait for its token takes every request made meanwhile, and idle() waits for it', async (t) => {
  let runs = 0;
  const runner = new SyncRunner({ fn: async () => void runs++, minIntervalMs: 200, maxIntervalMs: 60_000, burst: 1 });
  t.teardown(() => runner.destroy());
  runner.run();
  t.is(runs, 1);
  for (let i = 0; i < 5; i++) runner.run();
  t.is(runs, 1, 'no token yet');
  await runner.idle();
  t.is(runs, 2);
});

test('destroy() drops a run waiting for its token, and close() resolves', async (t) => {
  let runs = 0;
  const runner = new SyncRunner({ fn: async () => void runs++, minIntervalMs: 10_000, maxIntervalMs: 60_000, burst: 1 });
  runner.run();
  runner.run(); // waits 10 s for a token
  await runner.close();
  t.is(runs, 1);
  runner.run();
  t.is(runs, 1, 'no run after close');
});
