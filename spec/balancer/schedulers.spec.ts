import test from 'ava';
import type { ConnectionCounts, SchedulingPolicy } from '../../lib/balancer/load-balancer.js';
import { MAGLEV_TABLE_SIZE, MaglevScheduler } from '../../lib/balancer/maglev-scheduler.js';
import { SchedulingBalancer } from '../../lib/balancer/scheduling-balancer.js';
import { makeEndpoint } from '../../lib/model/endpoint.js';
import type { Endpoint } from '../../lib/model/endpoint.js';
import { SCHEDULERS } from '../../lib/model/scheduler-annotation.js';
import type { SchedulerName } from '../../lib/model/scheduler-annotation.js';
import { servicePortName } from '../../lib/model/service-port-name.js';

/** mulberry32: a small seeded generator with good high and low bits. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const SPN = servicePortName('default', 'web', 'http');
const NONE = { type: 'None' as const, timeoutSeconds: 0 };
const STICKY = { type: 'ClientIP' as const, timeoutSeconds: 600 };

function eps(n: number, offset = 0): Endpoint[] {
  return Array.from({ length: n }, (_, i) => makeEndpoint(`10.1.${Math.floor((i + offset) / 200)}.${((i + offset) % 200) + 1}`, 8080));
}

function clients(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
}

function setup(scheduler: SchedulerName, endpoints: readonly Endpoint[], weights: Record<string, number> = {}, seed = 7, affinity = NONE): SchedulingBalancer {
  const lb = new SchedulingBalancer({ random: seeded(seed) });
  lb.newService(SPN, affinity, { scheduler, weights });
  lb.updateEndpoints(SPN, endpoints);
  return lb;
}

function tally(lb: SchedulingBalancer, picks: number, client: (i: number) => string = () => '192.0.2.1'): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const key = lb.nextEndpoint(SPN, client(i), false)!.key;
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

function chiSquare(observed: Map<string, number>, expected: Map<string, number>): number {
  let x = 0;
  for (const [key, e] of expected) x += ((observed.get(key) ?? 0) - e) ** 2 / e;
  return x;
}

function mapping(lb: SchedulingBalancer, ips: readonly string[]): Map<string, string> {
  return new Map(ips.map((ip) => [ip, lb.nextEndpoint(SPN, ip, false)!.key]));
}

test('rr: each endpoint in turn; weights give each exactly its share per cycle, interleaved', (t) => {
  const list = eps(3);
  const plain = tally(setup('rr', list), 300);
  t.deepEqual([...plain.values()], [100, 100, 100]);
  const weighted = setup('rr', list, { '10.1.0.1': 3, '10.1.0.2': 2 });
  const cycle = Array.from({ length: 6 }, () => weighted.nextEndpoint(SPN, '192.0.2.1', false)!.ip);
  t.deepEqual(
    cycle.reduce<Record<string, number>>((m, ip) => ((m[ip] = (m[ip] ?? 0) + 1), m), {}),
    { '10.1.0.1': 3, '10.1.0.2': 2, '10.1.0.3': 1 },
  );
  // Smooth: the heaviest endpoint never takes its three picks in a row.
  t.false(cycle.join(',').includes(['10.1.0.1', '10.1.0.1', '10.1.0.1'].join(',')));
});

test('random: uniform by chi-square (seeded), and weights skew it as declared', (t) => {
  const list = eps(6);
  const picks = 60_000;
  const observed = tally(setup('random', list, {}, 11), picks);
  const expected = new Map(list.map((ep) => [ep.key, picks / 6]));
  // 5 degrees of freedom: 20.52 is the 0.999 quantile.
  t.true(chiSquare(observed, expected) < 20.52, `chi-square ${chiSquare(observed, expected)}`);

  const weights = { '10.1.0.1': 4, '10.1.0.2': 2 };
  const skewed = tally(setup('random', list, weights, 12), picks);
  const total = 4 + 2 + 4;
  const skewExpected = new Map(list.map((ep) => [ep.key, (picks * ((weights as Record<string, number>)[ep.ip] ?? 1)) / total]));
  t.true(chiSquare(skewed, skewExpected) < 20.52, `weighted chi-square ${chiSquare(skewed, skewExpected)}`);
  // And the uniform expectation is clearly rejected for the weighted draw.
  t.true(chiSquare(skewed, expected) > 1000);
});

test('lc: a new connection goes to the endpoint with the fewest active; ties go round robin; weights are ignored', (t) => {
  const list = eps(3);
  const lb = setup('lc', list, { '10.1.0.1': 50 });
  const counts = new Map<string, { active: number }>(list.map((ep) => [ep.key, { active: 0 }]));
  lb.trackConnections(SPN, counts as ConnectionCounts);
  counts.get(list[0]!.key)!.active = 2;
  counts.get(list[1]!.key)!.active = 5;
  counts.get(list[2]!.key)!.active = 1;
  t.is(lb.nextEndpoint(SPN, '192.0.2.1', false)!.key, list[2]!.key);
  counts.get(list[2]!.key)!.active = 3;
  t.is(lb.nextEndpoint(SPN, '192.0.2.1', false)!.key, list[0]!.key);
  for (const c of counts.values()) c.active = 0;
  t.deepEqual([...tally(lb, 30).values()], [10, 10, 10]);
});

test('sed picks the smallest (active+1)/weight; nq takes an idle endpoint first, else as sed', (t) => {
  const [big, small] = eps(2);
  const weights = { [big!.ip]: 4 };
  const counts = new Map([
    [big!.key, { active: 2 }],
    [small!.key, { active: 0 }],
  ]);
  const sed = setup('sed', [big!, small!], weights);
  sed.trackConnections(SPN, counts);
  // big: 3/4, small: 1/1.
  t.is(sed.nextEndpoint(SPN, '192.0.2.1', false)!.key, big!.key);
  const nq = setup('nq', [big!, small!], weights);
  nq.trackConnections(SPN, counts);
  t.is(nq.nextEndpoint(SPN, '192.0.2.1', false)!.key, small!.key);
  counts.get(small!.key)!.active = 1;
  // Nobody idle: nq is sed. big 3/4 < small 2/1.
  t.is(nq.nextEndpoint(SPN, '192.0.2.1', false)!.key, big!.key);
  counts.get(big!.key)!.active = 8;
  // big 9/4 > small 2/1.
  t.is(nq.nextEndpoint(SPN, '192.0.2.1', false)!.key, small!.key);
  t.is(sed.nextEndpoint(SPN, '192.0.2.1', false)!.key, small!.key);
});

test('sh: a client keeps its endpoint, in every process (whatever the shuffle), and clients spread by weight', (t) => {
  const list = eps(4);
  const ips = clients(4000);
  const a = mapping(setup('sh', list, {}, 1), ips);
  t.deepEqual(mapping(setup('sh', list, {}, 1), ips), a);
  t.deepEqual(mapping(setup('sh', [...list].reverse(), {}, 99), ips), a, 'another shuffle, the same mapping');
  const lb = setup('sh', list, {}, 1);
  for (let i = 0; i < 50; i++) t.is(lb.nextEndpoint(SPN, ips[3]!, false)!.key, a.get(ips[3]!)!);
  const weighted = mapping(setup('sh', list, { '10.1.0.1': 5 }, 1), ips);
  const share = [...weighted.values()].filter((k) => k === list[0]!.key).length / ips.length;
  t.true(share > 0.5 && share < 0.75, `weight 5 of 8: share ${share}`);
});

test('mh: adding an endpoint to N moves about 1/(N+1) of 10,000 clients, nearly all to the new one', (t) => {
  const ips = clients(10_000);
  for (const n of [3, 10, 25]) {
    const before = mapping(setup('mh', eps(n)), ips);
    const grown = eps(n + 1);
    const after = mapping(setup('mh', grown, {}, 3), ips);
    const moved = ips.filter((ip) => before.get(ip) !== after.get(ip));
    const fraction = moved.length / ips.length;
    t.true(fraction >= 0.5 / (n + 1) && fraction <= 1.5 / (n + 1), `N=${n}: moved ${fraction}`);
    const toNew = moved.filter((ip) => after.get(ip) === grown[n]!.key).length;
    t.true(toNew / moved.length > 0.9, `N=${n}: ${toNew} of ${moved.length} moved to the new endpoint`);
  }
});

test('mh: removing an endpoint moves its own clients and hardly any other', (t) => {
  const ips = clients(10_000);
  const list = eps(10);
  const before = mapping(setup('mh', list), ips);
  const removed = list[4]!;
  const after = mapping(
    setup(
      'mh',
      list.filter((ep) => ep !== removed),
      {},
      5,
    ),
    ips,
  );
  const own = ips.filter((ip) => before.get(ip) === removed.key);
  t.true(own.every((ip) => after.get(ip) !== removed.key));
  const others = ips.filter((ip) => before.get(ip) !== removed.key && before.get(ip) !== after.get(ip));
  t.true(others.length / ips.length < 0.02, `${others.length} clients of the remaining endpoints moved`);
  // sh, by contrast, remaps most clients.
  const shBefore = mapping(setup('sh', list), ips);
  const shAfter = mapping(
    setup(
      'sh',
      list.filter((ep) => ep !== removed),
    ),
    ips,
  );
  t.true(ips.filter((ip) => shBefore.get(ip) !== shAfter.get(ip)).length / ips.length > 0.5);
});

test('mh: shares follow the weights; every endpoint has slots in the prime-sized table', (t) => {
  t.is(new MaglevScheduler(eps(3), [1, 1, 1]).tableSize, MAGLEV_TABLE_SIZE);
  const small = new MaglevScheduler(eps(7), [1, 1, 1, 1, 1, 1, 1], 251);
  const seen = new Set(Array.from({ length: 251 }, (_, i) => small.pick(eps(7), `client-${i}`, { active: () => 0, avoid: undefined }).key));
  t.is(seen.size, 7);
  const list = eps(4);
  const ips = clients(20_000);
  const m = mapping(setup('mh', list, { '10.1.0.2': 3 }), ips);
  const share = [...m.values()].filter((k) => k === list[1]!.key).length / ips.length;
  t.true(share > 0.45 && share < 0.55, `weight 3 of 6: share ${share}`);
});

test('weights by Pod name apply to endpoints whose slice names the Pod', (t) => {
  const a = makeEndpoint('10.2.0.1', 80, '', { namespace: 'default', name: 'web-0' });
  const b = makeEndpoint('10.2.0.2', 80, '', { namespace: 'default', name: 'web-1' });
  const counts = tally(setup('rr', [a, b], { 'web-1': 3 }), 400);
  t.is(counts.get(b.key), 300);
  t.is(counts.get(a.key), 100);
});

test('ClientIP affinity wins over every scheduler: pinned clients keep their endpoint', (t) => {
  const list = eps(4);
  const ips = clients(40);
  for (const name of SCHEDULERS) {
    const lb = new SchedulingBalancer({ random: seeded(3) });
    lb.newService(SPN, STICKY);
    lb.updateEndpoints(SPN, list);
    const pins = mapping(lb, ips);
    const policy: SchedulingPolicy = { scheduler: name, weights: { '10.1.0.1': 7 } };
    lb.newService(SPN, STICKY, policy);
    // lc, sed, nq: the pinned endpoints look busy; the scheduler alone would avoid them.
    const counts = new Map(list.map((ep, i) => [ep.key, { active: i === 3 ? 0 : 100 }]));
    lb.trackConnections(SPN, counts);
    const alone = setup(name, list, policy.weights, 3);
    alone.trackConnections(SPN, counts);
    let differs = 0;
    for (const ip of ips) {
      for (let k = 0; k < 3; k++) t.is(lb.nextEndpoint(SPN, ip, false)!.key, pins.get(ip)!, `${name}: ${ip}`);
      if (alone.nextEndpoint(SPN, ip, false)!.key !== pins.get(ip)!) differs++;
    }
    t.true(differs > 0, `${name}: the scheduler alone would have moved some client`);
    // reset=true (the pinned endpoint failed): the scheduler picks and re-pins.
    const repinned = lb.nextEndpoint(SPN, ips[0]!, true)!.key;
    t.is(lb.nextEndpoint(SPN, ips[0]!, false)!.key, repinned);
  }
});

test('a retry avoids the endpoints just tried, even where the pick is a function of the client', (t) => {
  const list = eps(3);
  for (const name of SCHEDULERS) {
    const lb = setup(name, list);
    lb.trackConnections(SPN, new Map());
    const first = lb.nextEndpoint(SPN, '198.51.100.7', false)!.key;
    const second = lb.nextEndpoint(SPN, '198.51.100.7', true, new Set([first]))!.key;
    t.not(second, first, name);
    const third = lb.nextEndpoint(SPN, '198.51.100.7', true, new Set([first, second]))!.key;
    t.not(third, first, name);
    t.not(third, second, name);
  }
});

test('changing the scheduler or the weights rebuilds the port; an unchanged policy keeps rr position', (t) => {
  const list = eps(3);
  const lb = setup('rr', list);
  const first = lb.nextEndpoint(SPN, '192.0.2.1', false)!.key;
  lb.newService(SPN, NONE, { scheduler: 'rr', weights: {} });
  t.not(lb.nextEndpoint(SPN, '192.0.2.1', false)!.key, first, 'position kept');
  t.is(lb.schedulerOf(SPN), 'rr');
  lb.newService(SPN, NONE, { scheduler: 'sh', weights: {} });
  t.is(lb.schedulerOf(SPN), 'sh');
  const a = lb.nextEndpoint(SPN, '192.0.2.1', false)!.key;
  t.is(lb.nextEndpoint(SPN, '192.0.2.1', false)!.key, a);
});
