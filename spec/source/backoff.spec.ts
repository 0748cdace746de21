import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { Backoff } from '../../lib/source/backoff.js';

test('doubles from initialMs up to maxMs, and starts over after reset()', (t) => {
  const b = new Backoff({ initialMs: 1000, maxMs: 30_000, random: () => 0.5 });
  const delays = Array.from({ length: 7 }, () => b.next());
  t.deepEqual(
    delays.map((d) => d.attempt),
    [1, 2, 3, 4, 5, 6, 7],
  );
  t.deepEqual(
    delays.map((d) => d.delayMs),
    [1000, 2000, 4000, 8000, 16000, 30000, 30000],
  );
  b.reset();
  t.deepEqual(b.next(), { attempt: 1, delayMs: 1000 });
});

test('jitter moves each delay by at most ±20%', (t) => {
  const low = new Backoff({ initialMs: 1000, random: () => 0 });
  const high = new Backoff({ initialMs: 1000, random: () => 0.999999 });
  t.is(low.next().delayMs, 800);
  t.is(high.next().delayMs, 1200);
  const real = new Backoff();
  for (let i = 0; i < 100; i++) {
    const { attempt, delayMs } = real.next();
    const base = Math.min(30_000, 1000 * 2 ** (attempt - 1));
    t.true(delayMs >= base * 0.8 && delayMs <= base * 1.2);
  }
});

test('defaults are 1 s doubling to 30 s', (t) => {
  const b = new Backoff({ random: () => 0.5 });
  t.is(b.next().delayMs, 1000);
  for (let i = 0; i < 10; i++) b.next();
  t.is(b.next().delayMs, 30_000);
});

test('bad options are refused with every problem', (t) => {
  const err = t.throws(() => new Backoff({ initialMs: 0, maxMs: -5, jitter: 2 }), { instanceOf: InvalidConfigError });
  t.is(err?.problems.length, 3);
});

test('no delay exceeds maxMs, jitter included, and delays at the cap still spread below it', (t) => {
  const high = new Backoff({ initialMs: 1000, maxMs: 30_000, random: () => 0.999999 });
  const delays = Array.from({ length: 10 }, () => high.next().delayMs);
  t.is(Math.max(...delays), 30_000);
  const low = new Backoff({ initialMs: 1000, maxMs: 30_000, random: () => 0 });
  for (let i = 0; i < 9; i++) low.next();
  t.is(low.next().delayMs, 24_000);
  const real = new Backoff({ initialMs: 50, maxMs: 400 });
  for (let i = 0; i < 200; i++) t.true(real.next().delayMs <= 400);
});
