import test from 'ava';
import { RoundRobinBalancer } from '../../lib/balancer/round-robin-balancer.js';
import type { RoundRobinBalancerOptions } from '../../lib/balancer/round-robin-balancer.js';
import { shuffle } from '../../lib/balancer/shuffle.js';
import { InvalidConfigError } from '../../lib/errors.js';
import { makeEndpoint } from '../../lib/model/endpoint.js';
import type { Endpoint } from '../../lib/model/endpoint.js';
import { DEFAULT_AFFINITY_TIMEOUT_SECONDS } from '../../lib/model/service.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import type { ServicePortName } from '../../lib/model/service-port-name.js';

/** A seeded linear congruential generator: reproducible, yet it really permutes. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A clock the test moves by hand. */
function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function balancer(options: RoundRobinBalancerOptions = {}): RoundRobinBalancer {
  return new RoundRobinBalancer({ random: lcg(42), ...options });
}

function endpoints(...ports: number[]): Endpoint[] {
  return ports.map((port) => makeEndpoint(`10.0.0.${port % 250}`, port));
}

function keys(eps: readonly (Endpoint | undefined)[]): string[] {
  return eps.map((ep) => ep?.key ?? 'undefined');
}

function picks(lb: RoundRobinBalancer, spn: ServicePortName, count: number, client = '10.9.9.9'): string[] {
  const out: (Endpoint | undefined)[] = [];
  for (let i = 0; i < count; i++) out.push(lb.nextEndpoint(spn, client, false));
  return keys(out);
}

const sticky = { type: 'ClientIP', timeoutSeconds: 0 } as const;
const none = { type: 'None', timeoutSeconds: 0 } as const;
const foo = servicePortName('testns', 'foo', 'p');
const bar = servicePortName('testns', 'bar', 'p');

test('nextEndpoint returns undefined for an unknown service port', (t) => {
  const lb = balancer();
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false), undefined);
  t.deepEqual(lb.endpoints(foo), []);
  lb.newService(foo, none);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false), undefined, 'a service without endpoints has nothing to pick');
});

test('a single endpoint is always returned', (t) => {
  const lb = balancer();
  lb.updateEndpoints(foo, [makeEndpoint('10.0.0.1', 40)]);
  t.deepEqual(picks(lb, foo, 4), ['10.0.0.1:40', '10.0.0.1:40', '10.0.0.1:40', '10.0.0.1:40']);
});

test('multiple endpoints are picked round robin over the shuffled order, wrapping', (t) => {
  const lb = balancer();
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  const order = keys(lb.endpoints(foo));
  t.deepEqual([...order].sort(), ['10.0.0.1:1', '10.0.0.2:2', '10.0.0.3:3']);
  t.deepEqual(picks(lb, foo, 7), [...order, ...order, order[0]]);
});

test('each port name keeps its own endpoint list and position', (t) => {
  const lb = balancer();
  const p = servicePortName('testns', 'foo', 'p');
  const q = servicePortName('testns', 'foo', 'q');
  lb.updateEndpoints(p, endpoints(1, 2, 3));
  lb.updateEndpoints(q, endpoints(11, 12));
  const pOrder = keys(lb.endpoints(p));
  const qOrder = keys(lb.endpoints(q));
  t.deepEqual([...pOrder].sort(), ['10.0.0.1:1', '10.0.0.2:2', '10.0.0.3:3']);
  t.deepEqual([...qOrder].sort(), ['10.0.0.11:11', '10.0.0.12:12']);
  const got = [...picks(lb, p, 1), ...picks(lb, q, 1), ...picks(lb, p, 1), ...picks(lb, q, 2), ...picks(lb, p, 2)];
  t.deepEqual(got, [pOrder[0], qOrder[0], pOrder[1], qOrder[1], qOrder[0], pOrder[2], pOrder[0]]);
});

test('an endpoint update restarts at index 0 of the new list, and an empty list yields undefined', (t) => {
  const lb = balancer();
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  picks(lb, foo, 2);
  lb.updateEndpoints(foo, endpoints(4, 5));
  const order = keys(lb.endpoints(foo));
  t.deepEqual([...order].sort(), ['10.0.0.4:4', '10.0.0.5:5']);
  t.deepEqual(picks(lb, foo, 3), [order[0], order[1], order[0]]);
  lb.updateEndpoints(foo, []);
  t.deepEqual(lb.endpoints(foo), []);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false), undefined);
});

test('an unchanged endpoint set in another order keeps the position and the pins', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  const order = keys(lb.endpoints(foo));
  const pinned = lb.nextEndpoint(foo, '10.1.1.1', false);
  lb.updateEndpoints(foo, endpoints(3, 1, 2));
  t.deepEqual(keys(lb.endpoints(foo)), order, 'no reshuffle');
  t.is(lb.nextEndpoint(foo, '10.1.1.2', false)?.key, order[1], 'position kept');
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, pinned?.key, 'pin kept');
});

test('an unchanged set hands out the fresh endpoint objects', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, [makeEndpoint('10.0.0.1', 80, 'node-a')]);
  lb.nextEndpoint(foo, '10.1.1.1', false);
  lb.updateEndpoints(foo, [makeEndpoint('10.0.0.1', 80, 'node-b')]);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.nodeName, 'node-b');
  t.is(lb.nextEndpoint(foo, '10.1.1.2', false)?.nodeName, 'node-b');
});

test('duplicate endpoints are counted once', (t) => {
  const lb = balancer();
  lb.updateEndpoints(foo, [...endpoints(1, 2), makeEndpoint('10.0.0.1', 1)]);
  t.is(lb.endpoints(foo).length, 2);
  t.deepEqual([...picks(lb, foo, 2)].sort(), ['10.0.0.1:1', '10.0.0.2:2']);
});

test('deleting a service leaves another service round robin position intact', (t) => {
  const lb = balancer();
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  lb.updateEndpoints(bar, endpoints(4, 5, 6));
  const barOrder = keys(lb.endpoints(bar));
  picks(lb, foo, 1);
  t.deepEqual(picks(lb, bar, 2), [barOrder[0], barOrder[1]]);
  lb.deleteService(foo);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false), undefined);
  t.deepEqual(lb.endpoints(foo), []);
  t.deepEqual(picks(lb, bar, 2), [barOrder[2], barOrder[0]]);
});

/** Three clients against three endpoints: round robin gives each its own, then each must stick. */
function assertEachClientSticks(t: import('ava').ExecutionContext, lb: RoundRobinBalancer, spn: ServicePortName): Map<string, string> {
  const clients = ['10.1.1.1', '10.1.1.2', '10.1.1.3'];
  const first = new Map(clients.map((c) => [c, lb.nextEndpoint(spn, c, false)?.key ?? 'undefined']));
  t.is(new Set(first.values()).size, 3, 'three clients spread over three endpoints');
  for (let round = 0; round < 3; round++) {
    for (const c of clients) t.is(lb.nextEndpoint(spn, c, false)?.key, first.get(c), `${c} sticks`);
  }
  return first;
}

test('ClientIP affinity pins each client when newService comes before the endpoints', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  assertEachClientSticks(t, lb, foo);
});

test('ClientIP affinity pins each client when the endpoints come before newService', (t) => {
  const lb = balancer();
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  lb.newService(foo, sticky);
  assertEachClientSticks(t, lb, foo);
});

test('a pin on one port is not seen by another port, made before or after it', (t) => {
  const lb = balancer();
  const other = servicePortName('ns', 'other', 'p');
  const third = servicePortName('ns', 'third', 'p');
  lb.newService(other, sticky);
  lb.updateEndpoints(other, endpoints(1, 2, 3));
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  lb.nextEndpoint(foo, '10.9.9.1', false);
  lb.newService(third, sticky);
  lb.updateEndpoints(third, endpoints(1, 2, 3));
  t.is(lb.affinityEntryCount(foo), 1);
  t.is(lb.affinityEntryCount(other), 0);
  t.is(lb.affinityEntryCount(third), 0);
  lb.nextEndpoint(other, '10.9.9.2', false);
  t.is(lb.affinityEntryCount(foo), 1);
  t.is(lb.affinityEntryCount(other), 1);
  t.is(lb.affinityEntryCount(third), 0);
});

test('removing an endpoint moves only its clients, and adding one keeps existing pins', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  const all = endpoints(1, 2, 3);
  lb.updateEndpoints(foo, all);
  const first = assertEachClientSticks(t, lb, foo);
  const [victimClient, victimKey] = [...first.entries()][0] as [string, string];

  lb.updateEndpoints(
    foo,
    all.filter((ep) => ep.key !== victimKey),
  );
  t.is(lb.affinityEntryCount(foo), 2, 'only the pin to the removed endpoint is dropped');
  for (const [c, key] of first) {
    if (c === victimClient) continue;
    t.is(lb.nextEndpoint(foo, c, false)?.key, key, `${c} keeps its endpoint`);
  }
  const moved = lb.nextEndpoint(foo, victimClient, false)?.key;
  t.not(moved, victimKey);
  t.true(keys(lb.endpoints(foo)).includes(moved ?? ''));
  t.is(lb.nextEndpoint(foo, victimClient, false)?.key, moved, 'the moved client is pinned again');

  lb.updateEndpoints(foo, [...lb.endpoints(foo), makeEndpoint('10.0.0.4', 4)]);
  for (const [c, key] of first) {
    const expected = c === victimClient ? moved : key;
    t.is(lb.nextEndpoint(foo, c, false)?.key, expected, `${c} keeps its endpoint after an addition`);
  }
});

test('replacing all endpoints resets affinity', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  assertEachClientSticks(t, lb, foo);
  lb.updateEndpoints(foo, endpoints(4, 5, 6));
  t.is(lb.affinityEntryCount(foo), 0);
  const newKeys = keys(lb.endpoints(foo));
  const second = assertEachClientSticks(t, lb, foo);
  for (const key of second.values()) t.true(newKeys.includes(key));
});

test('deleting a service keeps other services affinity', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.newService(bar, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  lb.updateEndpoints(bar, endpoints(4, 5, 6));
  assertEachClientSticks(t, lb, foo);
  const barPins = assertEachClientSticks(t, lb, bar);
  lb.deleteService(foo);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false), undefined);
  t.is(lb.affinityEntryCount(foo), 0);
  for (const [c, key] of barPins) t.is(lb.nextEndpoint(bar, c, false)?.key, key);
});

test('reset=true skips affinity, advances the round robin and re-pins the client', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  const order = keys(lb.endpoints(foo));
  const client = '10.1.1.1';
  t.is(lb.nextEndpoint(foo, client, false)?.key, order[0]);
  t.is(lb.nextEndpoint(foo, client, false)?.key, order[0]);
  t.is(lb.nextEndpoint(foo, client, true)?.key, order[1], 'the failed pick is skipped');
  t.is(lb.nextEndpoint(foo, client, false)?.key, order[1], 'the client is re-pinned');
  t.is(lb.nextEndpoint(foo, client, true)?.key, order[2]);
  t.is(lb.nextEndpoint(foo, client, true)?.key, order[0], 'wraps');
  t.is(lb.nextEndpoint(foo, client, false)?.key, order[0]);
  t.is(lb.affinityEntryCount(foo), 1);
});

test('affinity expires exactly at the timeout', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now });
  lb.newService(foo, { type: 'ClientIP', timeoutSeconds: 10 });
  lb.updateEndpoints(foo, endpoints(1, 2));
  const order = keys(lb.endpoints(foo));
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0]);
  clock.advance(9_999);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0], 'pinned 1 ms before the timeout; refreshed');
  clock.advance(9_999);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0], 'the refresh restarted the timeout');
  clock.advance(10_000);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[1], 'expired at exactly the timeout');
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[1], 'and pinned to the new pick');
});

test('a custom timeout from newService after the endpoints is honoured', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now });
  lb.updateEndpoints(foo, endpoints(1, 2));
  lb.newService(foo, { type: 'ClientIP', timeoutSeconds: 5 });
  const order = keys(lb.endpoints(foo));
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0]);
  clock.advance(5_000);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[1]);
});

test('newService on an existing port updates the timeout of existing pins', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now });
  lb.newService(foo, { type: 'ClientIP', timeoutSeconds: 100 });
  lb.updateEndpoints(foo, endpoints(1, 2));
  const order = keys(lb.endpoints(foo));
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0]);
  clock.advance(20_000);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0], 'within the 100 s timeout');
  lb.newService(foo, { type: 'ClientIP', timeoutSeconds: 10 });
  t.is(lb.affinityEntryCount(foo), 1, 'same type: pins are kept');
  clock.advance(10_000);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[1], 'the 10 s timeout applies');
});

test('a timeout of 0 means the 3 hour default', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now });
  lb.newService(foo, { type: 'ClientIP', timeoutSeconds: 0 });
  lb.updateEndpoints(foo, endpoints(1, 2));
  const order = keys(lb.endpoints(foo));
  lb.nextEndpoint(foo, '10.1.1.1', false);
  clock.advance(DEFAULT_AFFINITY_TIMEOUT_SECONDS * 1000 - 1);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[0]);
  clock.advance(DEFAULT_AFFINITY_TIMEOUT_SECONDS * 1000);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, order[1]);
});

test('switching affinity to None clears the pins and stops pinning', (t) => {
  const lb = balancer();
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3));
  assertEachClientSticks(t, lb, foo);
  lb.newService(foo, none);
  t.is(lb.affinityEntryCount(foo), 0);
  const order = keys(lb.endpoints(foo));
  const got = picks(lb, foo, 3, '10.1.1.1');
  t.deepEqual([...got].sort(), [...order].sort(), 'one client is spread over every endpoint');
  t.is(lb.affinityEntryCount(foo), 0);
});

test('cleanupStaleStickySessions drops expired pins across services and keeps fresh ones', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now });
  lb.newService(foo, { type: 'ClientIP', timeoutSeconds: 10 });
  lb.newService(bar, { type: 'ClientIP', timeoutSeconds: 60 });
  lb.updateEndpoints(foo, endpoints(1, 2));
  lb.updateEndpoints(bar, endpoints(3, 4));
  const fooOrder = keys(lb.endpoints(foo));
  lb.nextEndpoint(foo, '10.1.1.1', false);
  lb.nextEndpoint(bar, '10.1.1.1', false);
  clock.advance(5_000);
  lb.nextEndpoint(foo, '10.1.1.2', false);
  clock.advance(5_000);

  lb.cleanupStaleStickySessions();
  t.is(lb.affinityEntryCount(foo), 1, 'the 10 s old pin goes; the 5 s old one stays');
  t.is(lb.affinityEntryCount(bar), 1, 'a 60 s timeout keeps the pin');
  t.is(lb.nextEndpoint(foo, '10.1.1.2', false)?.key, fooOrder[1], 'the fresh pin still holds');

  clock.advance(60_000);
  lb.cleanupStaleStickySessions();
  t.is(lb.affinityEntryCount(foo), 0);
  t.is(lb.affinityEntryCount(bar), 0);
});

test('cleanupStaleStickySessions still drops the pins of a port emptied by an earlier cleanup, or deleted and made again', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now });
  const sticky = { type: 'ClientIP' as const, timeoutSeconds: 10 };
  lb.newService(foo, sticky);
  lb.newService(bar, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2));
  lb.updateEndpoints(bar, endpoints(3, 4));
  lb.nextEndpoint(foo, '10.1.1.1', false);
  lb.nextEndpoint(bar, '10.1.1.1', false);
  clock.advance(10_000);
  lb.cleanupStaleStickySessions();
  t.is(lb.affinityEntryCount(foo), 0);
  // A cleanup that finds nothing pinned, then new pins: they expire like any other.
  lb.cleanupStaleStickySessions();
  lb.nextEndpoint(foo, '10.1.1.2', false);
  lb.deleteService(bar);
  lb.newService(bar, sticky);
  lb.updateEndpoints(bar, endpoints(3, 4));
  lb.nextEndpoint(bar, '10.1.1.2', false);
  t.is(lb.affinityEntryCount(foo), 1);
  t.is(lb.affinityEntryCount(bar), 1);
  clock.advance(10_000);
  lb.cleanupStaleStickySessions();
  t.is(lb.affinityEntryCount(foo), 0);
  t.is(lb.affinityEntryCount(bar), 0);
});

test('the affinity map is capped by evicting the least recently used client', (t) => {
  const clock = fakeClock();
  const lb = balancer({ now: clock.now, maxAffinityEntries: 3 });
  lb.newService(foo, sticky);
  lb.updateEndpoints(foo, endpoints(1, 2, 3, 4));
  const order = keys(lb.endpoints(foo));
  const a = lb.nextEndpoint(foo, '10.1.1.1', false)?.key;
  lb.nextEndpoint(foo, '10.1.1.2', false);
  lb.nextEndpoint(foo, '10.1.1.3', false);
  clock.advance(1);
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, a, 'refresh makes 10.1.1.1 the most recent');
  lb.nextEndpoint(foo, '10.1.1.4', false);
  t.is(lb.affinityEntryCount(foo), 3, 'never more than the cap');
  t.is(lb.nextEndpoint(foo, '10.1.1.1', false)?.key, a, 'the refreshed client survived');
  // 10.1.1.2 was least recently used and was evicted, so it is balanced anew (index is back at 0).
  t.is(lb.nextEndpoint(foo, '10.1.1.2', false)?.key, order[0]);
  t.is(lb.affinityEntryCount(foo), 3);
});

test('shuffle permutes with a seeded random and keeps every element exactly once', (t) => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  const shuffled = shuffle(items, lcg(7));
  t.notDeepEqual(shuffled, items, 'the order changed');
  t.deepEqual(
    [...shuffled].sort((x, y) => x - y),
    items,
  );
  t.deepEqual(shuffle(items, lcg(7)), shuffled, 'the same seed gives the same order');
  t.deepEqual(
    items,
    Array.from({ length: 20 }, (_, i) => i),
    'the input is untouched',
  );
  t.deepEqual(shuffle([], lcg(7)), []);
});

test('a balancer shuffles new endpoint lists and picks each endpoint once per n picks', (t) => {
  const lb = balancer({ random: lcg(3) });
  const eps = endpoints(1, 2, 3, 4, 5, 6, 7);
  lb.updateEndpoints(foo, eps);
  t.notDeepEqual(keys(lb.endpoints(foo)), keys(eps), 'the list was permuted');
  for (let round = 0; round < 4; round++) {
    t.deepEqual([...picks(lb, foo, 7)].sort(), keys(eps).sort(), `round ${round}`);
  }
});

test('the constructor rejects invalid options, reporting every problem', (t) => {
  const err = t.throws(() => new RoundRobinBalancer({ maxAffinityEntries: 0, now: 'soon' as unknown as () => number }), { instanceOf: InvalidConfigError });
  t.is(err?.problems.length, 2);
  t.regex(err?.message ?? '', /maxAffinityEntries must be a positive integer, got 0/);
  t.throws(() => new RoundRobinBalancer({ maxAffinityEntries: 1.5 }), { instanceOf: InvalidConfigError });
});

test('needsClientIP: only where affinity or the scheduler reads the client address (and for a port it does not know)', (t) => {
  const lb = new RoundRobinBalancer();
  const port = (name: string): ServicePortName => servicePortName('ns', name, 'p');
  lb.newService(port('rr'), { type: 'None', timeoutSeconds: 0 });
  lb.newService(port('lc'), { type: 'None', timeoutSeconds: 0 }, { scheduler: 'lc', weights: {} });
  lb.newService(port('sticky'), sticky);
  lb.newService(port('sh'), { type: 'None', timeoutSeconds: 0 }, { scheduler: 'sh', weights: {} });
  lb.newService(port('mh'), { type: 'None', timeoutSeconds: 0 }, { scheduler: 'mh', weights: {} });
  t.false(lb.needsClientIP(port('rr')));
  t.false(lb.needsClientIP(port('lc')));
  t.true(lb.needsClientIP(port('sticky')));
  t.true(lb.needsClientIP(port('sh')));
  t.true(lb.needsClientIP(port('mh')));
  t.true(lb.needsClientIP(port('unknown')));
  lb.newService(port('rr'), sticky);
  t.true(lb.needsClientIP(port('rr')), 'follows a change of the affinity');
});
