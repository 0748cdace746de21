import test from 'ava';
import { PortAllocationError } from '../../lib/errors.js';
import { KernelPortAllocator } from '../../lib/proxy/kernel-port-allocator.js';
import { RangePortAllocator } from '../../lib/proxy/range-port-allocator.js';

test('hands out every port of the range once, then fails clearly', (t) => {
  const a = new RangePortAllocator({ base: 40000, size: 5 }, { random: () => 0.5 });
  const got = new Set<number>();
  for (let i = 0; i < 5; i++) got.add(a.allocateNext());
  t.deepEqual([...got].sort(), [40000, 40001, 40002, 40003, 40004]);
  const err = t.throws(() => a.allocateNext(), { instanceOf: PortAllocationError })!;
  t.is(err.code, 'KUP_ERR_PORT_ALLOCATION');
  t.regex(err.message, /40000-40004/);
});

test('starts at a random offset and wraps', (t) => {
  const a = new RangePortAllocator({ base: 100, size: 4 }, { random: () => 0.99 });
  t.is(a.allocateNext(), 103);
  t.is(a.allocateNext(), 100);
});

test('a released port can be handed out again', (t) => {
  const a = new RangePortAllocator({ base: 5000, size: 1 });
  t.is(a.allocateNext(), 5000);
  a.release(5000);
  t.is(a.usedCount, 0);
  t.is(a.allocateNext(), 5000);
});

test('without a range the kernel chooses', (t) => {
  t.is(new KernelPortAllocator().allocateNext(), 0);
});
