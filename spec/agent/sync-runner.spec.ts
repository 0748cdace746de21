import test from 'ava';
import { SyncRunner } from '../../lib/agent/sync-runner.js';
import { waitFor } from '../helpers/wait-for.js';

test('requests made while a run waits are coalesced into it', async (t) => {
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const runner = new SyncRunner({
    fn: async () => {
      runs++;
      if (runs === 1) await gate;
    },
    minIntervalMs: 0,
    maxIntervalMs: 60_000,
  });
  t.teardown(() => runner.destroy());
  runner.run(); // starts, blocks on the gate
  for (let i = 0; i < 10; i++) runner.run(); // one waiting run
  release();
  await runner.idle();
  t.is(runs, 2);
});

test('runs are serialized, never concurrent', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const runner = new SyncRunner({
    fn: async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
    },
    minIntervalMs: 0,
    maxIntervalMs: 60_000,
  });
  t.teardown(() => runner.destroy());
  for (let i = 0; i < 5; i++) {
    runner.run();
    await new Promise((r) => setImmediate(r));
  }
  await runner.idle();
  t.is(maxInFlight, 1);
});

test('a burst of two runs at once, the third waits for the interval', async (t) => {
  const starts: number[] = [];
  const runner = new SyncRunner({ fn: async () => void starts.push(Date.now()), minIntervalMs: 300, maxIntervalMs: 60_000, burst: 2 });
  t.teardown(() => runner.destroy());
  const t0 = Date.now();
  runner.run();
  await waitFor('first run', () => starts.length === 1);
  runner.run();
  await waitFor('second run', () => starts.length === 2);
  runner.run();
  await waitFor('third run', () => starts.length === 3, 3000);
  t.true(starts[1]! - t0 < 250, 'burst runs are not delayed');
  t.true(starts[2]! - t0 >= 250, `third run waited (${starts[2]! - t0} ms)`);
});

test('runs periodically without requests, and a failing run does not stop it', async (t) => {
  let runs = 0;
  const runner = new SyncRunner({
    fn: async () => {
      runs++;
      throw new Error('boom');
    },
    minIntervalMs: 0,
    maxIntervalMs: 50,
  });
  t.teardown(() => runner.destroy());
  runner.start();
  await waitFor('three periodic runs', () => runs >= 3);
  await runner.close();
  const after = runs;
  runner.run();
  await runner.idle();
  t.is(runs, after, 'no run after close');
});

test('lastQueuedMs is the time of the last run() request, and periodic runs leave it alone', async (t) => {
  let clock = 1000;
  let runs = 0;
  const runner = new SyncRunner({ fn: async () => void runs++, minIntervalMs: 0, maxIntervalMs: 30, now: () => clock });
  t.teardown(() => runner.destroy());
  t.is(runner.lastQueuedMs, undefined);
  runner.run();
  t.is(runner.lastQueuedMs, 1000);
  clock = 2000;
  runner.run(); // joins the waiting run: still a request
  t.is(runner.lastQueuedMs, 2000);
  await runner.idle();
  clock = 3000;
  runner.start();
  await waitFor('two periodic runs', () => runs >= 3);
  t.is(runner.lastQueuedMs, 2000);
  runner.destroy();
  clock = 4000;
  runner.run();
  t.is(runner.lastQueuedMs, 2000, 'no request after destroy');
});
