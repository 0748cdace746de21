import test from 'ava';
import { SweepClock } from '../../../lib/proxy/tcp/sweep-clock.js';
import { waitFor } from '../../helpers/wait-for.js';

function counter(): { count: number; sweep(): void } {
  return {
    count: 0,
    sweep() {
      this.count++;
    },
  };
}

test('sweepers of one tick length share a timer; one that left is swept no more', async (t) => {
  const clock = new SweepClock();
  const a = counter();
  const b = counter();
  const slow = counter();
  clock.join(a, 25);
  clock.join(b, 25);
  clock.join(slow, 60_000);
  t.teardown(() => {
    clock.leave(a, 25);
    clock.leave(b, 25);
    clock.leave(slow, 60_000);
  });
  await waitFor('both swept twice', () => a.count >= 2 && b.count >= 2, 5000);
  // One timer walks both, so neither can be more than one sweep ahead of the other.
  t.true(Math.abs(a.count - b.count) <= 1);
  t.is(slow.count, 0);
  clock.leave(a, 25);
  const left = a.count;
  await waitFor('b swept twice more', () => b.count >= left + 3, 5000);
  t.is(a.count, left);
});

test('the timer goes with its last sweeper and comes back with the next', async (t) => {
  const clock = new SweepClock();
  const a = counter();
  clock.join(a, 25);
  await waitFor('swept', () => a.count >= 1, 5000);
  clock.leave(a, 25);
  clock.leave(a, 25); // leaving twice is harmless
  const left = a.count;
  const b = counter();
  clock.join(b, 25);
  t.teardown(() => clock.leave(b, 25));
  await waitFor('the new sweeper is swept', () => b.count >= 2, 5000);
  t.is(a.count, left);
});
