import test from 'ava';
import { ServiceIPPool } from '../../lib/agent/service-ip-pool.js';
import { parseServiceIPPool } from '../../lib/config/service-ip-pool-cidr.js';
import type { ServiceIPPoolRange } from '../../lib/config/service-ip-pool-cidr.js';

function range(cidr: string): ServiceIPPoolRange {
  const r = parseServiceIPPool(cidr);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

test('the same service gets the same address from a new pool (a restart), a different service another', (t) => {
  const a = new ServiceIPPool(range('127.1.0.0/16'));
  const b = new ServiceIPPool(range('127.1.0.0/16'));
  t.is(a.assign('shop/web'), b.assign('shop/web'));
  t.not(a.assign('shop/web'), a.assign('shop/db'));
  t.regex(a.assign('shop/web')!, /^127\.1\.\d+\.\d+$/);
  t.is(a.addressOf('shop/web'), a.assign('shop/web'), 'assign() again returns the address held');
});

test('collisions probe to the next free address; assigned in the same order, every address is the same again', (t) => {
  // 6 usable addresses for 6 services: collisions are certain.
  const keys = ['a/one', 'a/two', 'a/three', 'b/one', 'b/two', 'b/three'].sort();
  const first = new ServiceIPPool(range('127.1.2.0/29'));
  const again = new ServiceIPPool(range('127.1.2.0/29'));
  const ips = keys.map((k) => first.assign(k));
  t.deepEqual(
    keys.map((k) => again.assign(k)),
    ips,
  );
  t.is(new Set(ips).size, 6, 'all different');
  const reversed = new ServiceIPPool(range('127.1.2.0/29'));
  for (const k of [...keys].reverse()) reversed.assign(k);
  t.notDeepEqual(
    keys.map((k) => reversed.addressOf(k)),
    ips,
    'the order matters, so some keys did collide',
  );
  for (const ip of ips) t.regex(ip!, /^127\.1\.2\.[1-6]$/, 'network (.0) and broadcast (.7) addresses are left out');
});

test('exhausted: undefined for the next service; a release frees the address for it', (t) => {
  const pool = new ServiceIPPool(range('127.1.3.0/30'));
  const x = pool.assign('ns/x');
  const y = pool.assign('ns/y');
  t.truthy(x && y);
  t.false(pool.hasFree());
  t.is(pool.assign('ns/z'), undefined);
  pool.release('ns/x');
  t.true(pool.hasFree());
  t.is(pool.assign('ns/z'), x);
  t.is(pool.addressOf('ns/x'), undefined);
});

test("127.0.0.1 is never given out: the machine's own programs listen there", (t) => {
  const pool = new ServiceIPPool(range('127.0.0.0/30'));
  const ips = [pool.assign('ns/a'), pool.assign('ns/b')];
  t.deepEqual(ips.sort(), ['127.0.0.2', undefined].sort());
});
