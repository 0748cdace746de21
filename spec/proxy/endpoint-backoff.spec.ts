import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { EndpointBackoff } from '../../lib/proxy/endpoint-backoff.js';

/** A backoff on a clock the test moves by hand. */
function clocked(options: { initialMs?: number; maxMs?: number; maxEntries?: number } = {}): { backoff: EndpointBackoff; advance(ms: number): void } {
  let now = 1_000_000;
  const backoff = new EndpointBackoff({ ...options, now: () => now });
  return { backoff, advance: (ms) => (now += ms) };
}

test('a failed endpoint is backed off for 1 s by default, then usable again', (t) => {
  const { backoff, advance } = clocked();
  t.false(backoff.isBackedOff('10.0.0.1:80'));
  t.is(backoff.fail('10.0.0.1:80'), 1000);
  t.true(backoff.isBackedOff('10.0.0.1:80'));
  t.false(backoff.isBackedOff('10.0.0.2:80'));
  advance(999);
  t.true(backoff.isBackedOff('10.0.0.1:80'));
  advance(1);
  t.false(backoff.isBackedOff('10.0.0.1:80'));
});

test('repeated failures double the back-off up to 10 s', (t) => {
  const { backoff, advance } = clocked();
  const seen: number[] = [];
  for (let i = 0; i < 7; i++) {
    const ms = backoff.fail('ep');
    seen.push(ms);
    advance(ms);
  }
  t.deepEqual(seen, [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
});

test('failures while already backed off do not double (concurrent dials of one outage)', (t) => {
  const { backoff, advance } = clocked();
  t.is(backoff.fail('ep'), 1000);
  advance(100);
  t.is(backoff.fail('ep'), 900);
  t.is(backoff.fail('ep'), 900);
  advance(900);
  t.is(backoff.fail('ep'), 2000);
});

test('a success resets the history', (t) => {
  const { backoff, advance } = clocked();
  backoff.fail('ep');
  advance(1000);
  backoff.fail('ep');
  advance(2000);
  backoff.ok('ep');
  t.is(backoff.size, 0);
  t.false(backoff.isBackedOff('ep'));
  t.is(backoff.fail('ep'), 1000);
});

test('a failure long after the last one starts again from the initial back-off, and old entries expire', (t) => {
  const { backoff, advance } = clocked();
  backoff.fail('ep');
  advance(1000);
  t.is(backoff.fail('ep'), 2000);
  advance(2000 + 10_000);
  t.false(backoff.isBackedOff('ep'));
  t.is(backoff.size, 0, 'forgotten on lookup once expired');
  t.is(backoff.fail('ep'), 1000);
  // Expired entries are also pruned from the head by later failures of other endpoints.
  advance(1000 + 10_000);
  backoff.fail('other');
  t.is(backoff.size, 1);
});

test('memory is bounded: past maxEntries the oldest failure is forgotten', (t) => {
  const { backoff } = clocked({ maxEntries: 3 });
  for (let i = 0; i < 10; i++) backoff.fail(`ep${i}`);
  t.is(backoff.size, 3);
  t.false(backoff.isBackedOff('ep0'));
  t.true(backoff.isBackedOff('ep9'));
});

test('custom initial and max back-offs; invalid options are all reported at once', (t) => {
  const { backoff, advance } = clocked({ initialMs: 50, maxMs: 120 });
  t.is(backoff.fail('ep'), 50);
  advance(50);
  t.is(backoff.fail('ep'), 100);
  advance(100);
  t.is(backoff.fail('ep'), 120);
  const err = t.throws(() => new EndpointBackoff({ initialMs: 0, maxMs: -1, maxEntries: 0 }), { instanceOf: InvalidConfigError });
  t.is(err?.problems.length, 3);
});
