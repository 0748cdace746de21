import test from 'ava';
import { ClosedError, RulesError } from '../../lib/errors.js';
import { SerialLifecycle } from '../../lib/rules/serial-lifecycle.js';

/** A promise with its resolve, to hold a task open while others are queued behind it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

test('start, syncs and close run one at a time in call order', async (t) => {
  const life = new SerialLifecycle('test rules');
  const order: string[] = [];
  let running = 0;
  const step = (name: string, wait?: Promise<void>) => async (): Promise<void> => {
    running++;
    t.is(running, 1, `${name} overlapped another call`);
    order.push(`${name} begins`);
    await wait;
    order.push(`${name} ends`);
    running--;
  };
  const held = gate();
  const calls = [life.start(step('start', held.promise)), life.sync(step('sync 1')), life.sync(step('sync 2')), life.close(() => [step('teardown')])];
  await Promise.resolve();
  t.deepEqual(order, ['start begins']);
  held.open();
  await Promise.all(calls);
  t.deepEqual(order, ['start begins', 'start ends', 'sync 1 begins', 'sync 1 ends', 'sync 2 begins', 'sync 2 ends', 'teardown begins', 'teardown ends']);
});

test('sync before start is refused with a RulesError naming the backend', async (t) => {
  const life = new SerialLifecycle('nftables rules');
  let ran = false;
  const err = await t.throwsAsync(
    life.sync(async () => (ran = true)),
    { instanceOf: RulesError },
  );
  t.is(err.message, 'nftables rules: sync() before start()');
  t.false(ran);
});

test('a failed start leaves it unstarted, the queue going, and start can be tried again', async (t) => {
  const life = new SerialLifecycle('iptables rules');
  await t.throwsAsync(
    life.start(async () => Promise.reject(new RulesError('iptables not found'))),
    { message: 'iptables not found' },
  );
  await t.throwsAsync(
    life.sync(async () => undefined),
    { message: 'iptables rules: sync() before start()' },
  );
  await life.start(async () => undefined);
  t.is(await life.sync(async () => 42), 42);
});

test('start twice runs begin once', async (t) => {
  const life = new SerialLifecycle('address assigner');
  let begun = 0;
  await Promise.all([life.start(async () => void begun++), life.start(async () => void begun++)]);
  t.is(begun, 1);
});

test('after close, start and sync are refused with ClosedError and close again does nothing', async (t) => {
  const life = new SerialLifecycle('address assigner');
  await life.start(async () => undefined);
  let teardowns = 0;
  await life.close(() => [async () => void teardowns++]);
  await life.close(() => [async () => void teardowns++]);
  t.is(teardowns, 1);
  const started = await t.throwsAsync(
    life.start(async () => undefined),
    { instanceOf: ClosedError },
  );
  t.is(started.message, 'address assigner is closed');
  await t.throwsAsync(
    life.sync(async () => undefined),
    { instanceOf: ClosedError },
  );
});

test('a backend that never started has nothing to tear down', async (t) => {
  const life = new SerialLifecycle('iptables rules');
  let asked = false;
  await life.close(() => {
    asked = true;
    return [];
  });
  t.false(asked);
});

test('teardown runs every step after a failure and reports each in one RulesError', async (t) => {
  const life = new SerialLifecycle('iptables rules');
  await life.start(async () => undefined);
  const ran: string[] = [];
  const err = await t.throwsAsync(
    life.close(() => [
      async () => {
        ran.push('IPv4');
        throw new RulesError('iptables -X failed');
      },
      async () => void ran.push('IPv6'),
      async () => {
        ran.push('filter');
        throw new RulesError('ip6tables -X failed');
      },
    ]),
    { instanceOf: RulesError },
  );
  t.deepEqual(ran, ['IPv4', 'IPv6', 'filter']);
  t.is(err.code, 'KUP_ERR_RULES');
  t.is(err.message, 'could not remove everything: iptables -X failed; ip6tables -X failed');
});

test('the teardown steps are asked for when the close runs, after the calls queued before it', async (t) => {
  const life = new SerialLifecycle('iptables rules');
  const families: string[] = [];
  const held = gate();
  const started = life.start(async () => {
    await held.promise;
    families.push('IPv4', 'IPv6');
  });
  const removed: string[] = [];
  const closed = life.close(() => families.map((f) => async () => void removed.push(f)));
  held.open();
  await Promise.all([started, closed]);
  t.deepEqual(removed, ['IPv4', 'IPv6']);
});
