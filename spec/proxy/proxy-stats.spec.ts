import test from 'ava';
import { SchedulingBalancer } from '../../lib/balancer/scheduling-balancer.js';
import { makeEndpoint } from '../../lib/model/endpoint.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { ProxyStats } from '../../lib/proxy/proxy-stats.js';

test('endpoint() creates an entry once and returns the same object after', (t) => {
  const stats = new ProxyStats();
  const a = stats.endpoint('10.0.0.1:80');
  a.total++;
  t.is(stats.endpoint('10.0.0.1:80'), a);
  t.deepEqual(Object.fromEntries(stats.endpoints), { '10.0.0.1:80': { active: 0, total: 1, dialFailures: 0 } });
});

test('bounded: idle entries of endpoints out of the rotation go when the map grows; live and active ones stay', (t) => {
  let live = ['10.0.0.1:80', '10.0.0.2:80'];
  const stats = new ProxyStats({ liveEndpoints: () => live.map((key) => ({ key })) });
  for (const key of live) stats.endpoint(key).total++;
  const busy = stats.endpoint('10.0.9.9:80');
  busy.active = 1;
  // 1,000 endpoints pass through the rotation, one at a time.
  for (let i = 0; i < 1000; i++) {
    const key = `10.1.${Math.floor(i / 250)}.${i % 250}:80`;
    live = ['10.0.0.1:80', '10.0.0.2:80', key];
    stats.endpoint(key).total++;
    t.true(stats.endpoints.size <= 16, `${stats.endpoints.size} entries after ${i + 1}`);
  }
  t.is(stats.endpoints.get('10.0.0.1:80')?.total, 1);
  t.is(stats.endpoints.get('10.0.0.2:80')?.total, 1);
  t.is(stats.endpoints.get('10.0.9.9:80'), busy, 'an entry with active connections is never dropped');
});

test('a port with thousands of live endpoints keeps them all, at amortized O(1) per new entry', (t) => {
  const keys = Array.from({ length: 5000 }, (_, i) => `10.2.${Math.floor(i / 250)}.${i % 250}:80`);
  let calls = 0;
  const stats = new ProxyStats({
    liveEndpoints: () => {
      calls++;
      return keys.map((key) => ({ key }));
    },
  });
  for (const key of keys) stats.endpoint(key).total++;
  t.is(stats.endpoints.size, 5000);
  t.true(calls <= 12, `${calls} prunes`);
});

test('without a rotation to ask, idle entries are dropped once there are 16', (t) => {
  const stats = new ProxyStats();
  for (let i = 0; i < 100; i++) stats.endpoint(`10.3.0.${i}:80`).dialFailures++;
  t.true(stats.endpoints.size <= 16);
});

test('with a rotation, pruning keeps what the balancer has in rotation under this socket key, not under another', (t) => {
  const balancer = new SchedulingBalancer();
  const mine = servicePortName('default', 'a', 'http');
  const other = servicePortName('default', 'b', 'http');
  balancer.updateEndpoints(mine, [makeEndpoint('10.4.0.1', 80)]);
  balancer.updateEndpoints(other, [makeEndpoint('10.4.0.2', 80)]);
  const stats = new ProxyStats({ rotation: balancer, spn: mine });
  stats.endpoint('10.4.0.1:80').total++;
  stats.endpoint('10.4.0.2:80').total++;
  for (let i = 0; i < 100; i++) stats.endpoint(`10.5.0.${i}:80`).total++;
  t.is(stats.endpoints.get('10.4.0.1:80')?.total, 1);
  t.is(stats.endpoints.get('10.4.0.2:80'), undefined, 'in rotation only under another key');
});

test('get() reads counters without making the map, and a balancer tracking the stats sees their active counts', (t) => {
  const spn = servicePortName('default', 'lc', 'http');
  const stats = new ProxyStats();
  t.is(stats.get('10.6.0.1:80'), undefined);
  const balancer = new SchedulingBalancer();
  const list = [makeEndpoint('10.6.0.1', 80), makeEndpoint('10.6.0.2', 80)];
  balancer.newService(spn, { type: 'None', timeoutSeconds: 0 }, { scheduler: 'lc', weights: {} });
  balancer.updateEndpoints(spn, list);
  balancer.trackConnections(spn, stats);
  stats.endpoint('10.6.0.1:80').active = 3;
  t.is(stats.get('10.6.0.1:80')?.active, 3);
  for (let i = 0; i < 4; i++) t.is(balancer.nextEndpoint(spn, '192.0.2.1', false)?.key, '10.6.0.2:80');
});
