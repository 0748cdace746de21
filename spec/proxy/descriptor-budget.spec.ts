import test from 'ava';
import { DescriptorBudget, FALLBACK_NOFILE, isLocalResourceError, MIN_HEADROOM, readOpenFileLimit } from '../../lib/proxy/descriptor-budget.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            256                  4096                 files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open-file limit is read from /proc/self/limits text', (t) => {
  t.is(readOpenFileLimit(LIMITS), 256);
  t.is(readOpenFileLimit(LIMITS.replace('256 ', 'unlimited ')), undefined);
  t.is(readOpenFileLimit('nothing here'), undefined);
});

test('this process: the limit of the running kernel, or the fallback off Linux', (t) => {
  const budget = new DescriptorBudget();
  if (process.platform === 'linux') {
    t.true(budget.measured);
    t.true(budget.limit > 0);
  } else {
    t.is(budget.limit, FALLBACK_NOFILE);
  }
});

test('headroom is 10 % of the limit or 128, whichever is more; the UDP cap is half the rest', (t) => {
  const small = new DescriptorBudget(256);
  t.is(small.headroom, MIN_HEADROOM);
  t.is(small.size, 128);
  t.is(small.udpSessionCap(), 64);
  const big = new DescriptorBudget(20_000);
  t.is(big.headroom, 2000);
  t.is(big.size, 18_000);
  t.is(big.udpSessionCap(), 9000);
  // A limit below the headroom leaves nothing, and the cap is still at least one session.
  const tiny = new DescriptorBudget(100);
  t.is(tiny.size, 0);
  t.is(tiny.udpSessionCap(), 1);
});

test('acquire refuses past the budget and takes nothing then; release gives back', (t) => {
  const b = new DescriptorBudget(132);
  t.is(b.size, 4);
  t.true(b.tryAcquire(2));
  t.true(b.tryAcquire(2));
  t.false(b.tryAcquire(2));
  t.is(b.used, 4);
  b.release(2);
  t.true(b.tryAcquire(2));
  b.release(100);
  t.is(b.used, 0);
});

test("local resource errors are the host's shortages only", (t) => {
  for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']) t.true(isLocalResourceError(code), code);
  for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', undefined]) t.false(isLocalResourceError(code), String(code));
});
