import test from 'ava';
import type { EndpointPortSpec, EndpointSliceSpec, EndpointSpec } from '../../lib/model/endpoint-slice.js';
import { EndpointsCache } from '../../lib/model/endpoints-cache.js';
import type { ServicePortSpec, ServiceSpec } from '../../lib/model/service.js';
import { serviceSpec } from '../helpers/service-spec.js';

const HTTP: ServicePortSpec = { name: 'http', protocol: 'TCP', port: 80, targetPort: 'web', nodePort: 0 };

function svc(name = 'web', ports: ServicePortSpec[] = [HTTP]): ServiceSpec {
  return serviceSpec({ name, ports });
}

function ep(ip: string, conditions: Partial<EndpointSpec> = {}): EndpointSpec {
  const ready = conditions.ready ?? true;
  return {
    addresses: [ip],
    ready,
    serving: conditions.serving ?? ready,
    terminating: conditions.terminating ?? false,
    nodeName: conditions.nodeName ?? '',
    zone: conditions.zone ?? '',
    hints: conditions.hints,
    hostname: '',
  };
}

/** A slice that declares no ports at all (a default parameter cannot be given `undefined`). */
const NO_PORTS = null;

function slice(name: string, endpoints: EndpointSpec[], ports: EndpointPortSpec[] | null = [{ name: 'http', protocol: 'TCP', port: 8080 }], extra: Partial<EndpointSliceSpec> = {}): EndpointSliceSpec {
  return { namespace: 'default', name, serviceName: 'web', addressType: 'IPv4', ports: ports ?? undefined, endpoints, ...extra };
}

function put(cache: EndpointsCache, ...slices: EndpointSliceSpec[]): void {
  for (const s of slices) cache.update(`${s.namespace}/${s.name}`, s);
}

const keys = (cache: EndpointsCache, service = svc(), port = HTTP, accept?: (n: string) => boolean): string[] => cache.endpointsFor(service, port, accept ? { accept } : {}).map((e) => e.key);

test('merges every slice of the service, de-duplicated and sorted by key', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-b', [ep('10.1.0.3'), ep('10.1.0.1')]), slice('web-a', [ep('10.1.0.2'), ep('10.1.0.1')]));
  put(cache, slice('other-a', [ep('10.9.0.1')], NO_PORTS, { serviceName: 'other' }));
  t.deepEqual(keys(cache), ['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080']);
  const first = cache.endpointsFor(svc(), HTTP)[0]!;
  t.deepEqual(first, { ip: '10.1.0.1', port: 8080, key: '10.1.0.1:8080', nodeName: '' });
});

test('an address ready in one slice and not ready in another counts as ready', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1', { ready: false })]), slice('web-b', [ep('10.1.0.1')]), slice('web-c', [ep('10.1.0.2', { ready: false })]));
  t.deepEqual(keys(cache), ['10.1.0.1:8080']);
});

test('only ready endpoints while any is ready; otherwise serving and terminating ones', (t) => {
  const cache = new EndpointsCache();
  put(
    cache,
    slice('web-a', [
      ep('10.1.0.1'),
      ep('10.1.0.2', { ready: false, serving: true, terminating: true }),
      ep('10.1.0.3', { ready: false, serving: false, terminating: true }),
      ep('10.1.0.4', { ready: false, serving: true, terminating: false }),
    ]),
  );
  t.deepEqual(keys(cache), ['10.1.0.1:8080']);
  put(
    cache,
    slice('web-a', [
      ep('10.1.0.2', { ready: false, serving: true, terminating: true }),
      ep('10.1.0.3', { ready: false, serving: false, terminating: true }),
      ep('10.1.0.4', { ready: false, serving: true }),
    ]),
  );
  t.deepEqual(keys(cache), ['10.1.0.2:8080']);
  put(cache, slice('web-a', [ep('10.1.0.3', { ready: false, serving: false, terminating: true })]));
  t.deepEqual(keys(cache), []);
});

test('a slice without ports uses a numeric targetPort, and contributes nothing to a named one', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1')], NO_PORTS));
  const numeric: ServicePortSpec = { ...HTTP, targetPort: 9376 };
  t.deepEqual(keys(cache, svc('web', [numeric]), numeric), ['10.1.0.1:9376']);
  t.deepEqual(keys(cache), []);
});

test('a slice with an empty port list contributes nothing', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1')], []));
  const numeric: ServicePortSpec = { ...HTTP, targetPort: 9376 };
  t.deepEqual(keys(cache, svc('web', [numeric]), numeric), []);
});

test('slice ports match by name and protocol', (t) => {
  const cache = new EndpointsCache();
  put(
    cache,
    slice(
      'web-a',
      [ep('10.1.0.1')],
      [
        { name: 'http', protocol: 'UDP', port: 7000 },
        { name: 'dns', protocol: 'TCP', port: 5353 },
      ],
    ),
    slice('web-b', [ep('10.1.0.2')], [{ name: 'http', protocol: 'TCP', port: 8080 }]),
  );
  t.deepEqual(keys(cache), ['10.1.0.2:8080']);
  const udp: ServicePortSpec = { ...HTTP, protocol: 'UDP' };
  t.deepEqual(keys(cache, svc('web', [udp]), udp), ['10.1.0.1:7000']);
});

test('FQDN slices are skipped; IPv6 endpoints get bracketed keys', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-fqdn', [ep('db.example.com')], NO_PORTS, { addressType: 'FQDN' }), slice('web-v6', [ep('fd00::1')], NO_PORTS, { addressType: 'IPv6' }));
  const numeric: ServicePortSpec = { ...HTTP, targetPort: 80 };
  t.deepEqual(keys(cache, svc('web', [numeric]), numeric), ['[fd00::1]:80']);
});

test('accept filters by node before the terminating fallback', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1', { nodeName: 'n1' }), ep('10.1.0.2', { nodeName: 'n2', ready: false, serving: true, terminating: true })]));
  t.deepEqual(
    keys(cache, svc(), HTTP, (n) => n === 'n2'),
    ['10.1.0.2:8080'],
  );
  t.deepEqual(
    keys(cache, svc(), HTTP, (n) => n === 'n1'),
    ['10.1.0.1:8080'],
  );
  t.is(cache.endpointsFor(svc(), HTTP)[0]!.nodeName, 'n1');
});

test('update returns the affected services, both when a slice moves', (t) => {
  const cache = new EndpointsCache();
  t.deepEqual(cache.update('default/web-a', slice('web-a', [ep('10.1.0.1')])), ['default/web']);
  t.deepEqual(cache.update('default/web-a', slice('web-a', [ep('10.1.0.1')], NO_PORTS, { serviceName: 'api' })), ['default/web', 'default/api']);
  t.deepEqual(keys(cache), []);
  t.deepEqual(
    cache.slicesOf('default/api').map((s) => s.name),
    ['web-a'],
  );
  t.deepEqual(cache.update('default/web-a', undefined), ['default/api']);
  t.deepEqual(cache.update('default/web-a', undefined), []);
  t.is(cache.size, 0);
  t.deepEqual(cache.slicesOf('default/api'), []);
});

test('deleting one of two slices keeps the other', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1')]), slice('web-b', [ep('10.1.0.2')]));
  cache.update('default/web-a', undefined);
  t.deepEqual(keys(cache), ['10.1.0.2:8080']);
});

test('slices of a same-named service in another namespace are not mixed in', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1')]), slice('web-a', [ep('10.2.0.1')], NO_PORTS, { namespace: 'other' }));
  t.deepEqual(keys(cache), ['10.1.0.1:8080']);
});

// ---- topology: EndpointSlice hints, as kube-proxy's CategorizeEndpoints ----------------------------

const HERE = { zone: 'zone-a', nodeName: 'n1' };
const zones = (...forZones: string[]): EndpointSpec['hints'] => ({ forZones, forNodes: [] });
const topo = (cache: EndpointsCache, topology = HERE, accept?: (n: string) => boolean): string[] => cache.endpointsFor(svc(), HTTP, { topology, ...(accept ? { accept } : {}) }).map((e) => e.key);

function hinted(): EndpointsCache {
  const cache = new EndpointsCache();
  put(
    cache,
    slice('web-a', [
      ep('10.1.0.1', { nodeName: 'n1', zone: 'zone-a', hints: zones('zone-a') }),
      ep('10.1.0.2', { nodeName: 'n2', zone: 'zone-b', hints: zones('zone-b') }),
      ep('10.1.0.3', { nodeName: 'n3', zone: 'zone-a', hints: zones('zone-a', 'zone-c') }),
    ]),
  );
  return cache;
}

test('topology: every ready endpoint hinted and some for this zone: only those', (t) => {
  t.deepEqual(topo(hinted()), ['10.1.0.1:8080', '10.1.0.3:8080']);
  t.deepEqual(topo(hinted(), { zone: 'zone-c', nodeName: 'n9' }), ['10.1.0.3:8080']);
  // Without a topology filter, every ready endpoint.
  t.deepEqual(keys(hinted()), ['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080']);
});

test('topology: any ready endpoint without a zone hint: every ready endpoint', (t) => {
  const cache = hinted();
  put(cache, slice('web-b', [ep('10.1.0.4', { nodeName: 'n4' })]));
  t.deepEqual(topo(cache), ['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080', '10.1.0.4:8080']);
  // Empty hint lists are no hint either.
  put(cache, slice('web-b', [ep('10.1.0.4', { nodeName: 'n4', hints: { forZones: [], forNodes: [] } })]));
  t.is(topo(cache).length, 4);
});

test('topology: no ready endpoint hinted for this zone, or no zone known: every ready endpoint', (t) => {
  t.deepEqual(topo(hinted(), { zone: 'zone-d', nodeName: 'n1' }), ['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080']);
  t.deepEqual(topo(hinted(), { zone: '', nodeName: 'n1' }), ['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080']);
});

test('topology: endpoints that are not ready neither need a hint nor are used', (t) => {
  const cache = hinted();
  put(cache, slice('web-b', [ep('10.1.0.4', { ready: false, serving: true, terminating: true }), ep('10.1.0.5', { ready: false, hints: zones('zone-a') })]));
  t.deepEqual(topo(cache), ['10.1.0.1:8080', '10.1.0.3:8080']);
  // The only endpoint hinted for this zone is not ready: no endpoint for here, so all ready ones.
  put(cache, slice('web-a', [ep('10.1.0.1', { ready: false, hints: zones('zone-a') }), ep('10.1.0.2', { hints: zones('zone-b') })]));
  t.deepEqual(topo(cache), ['10.1.0.2:8080']);
});

test('topology: node hints (PreferSameNode) come first, and fall back to zone hints', (t) => {
  const cache = new EndpointsCache();
  const both = (node: string, zone: string): EndpointSpec['hints'] => ({ forNodes: [node], forZones: [zone] });
  put(cache, slice('web-a', [ep('10.1.0.1', { hints: both('n1', 'zone-a') }), ep('10.1.0.2', { hints: both('n2', 'zone-a') }), ep('10.1.0.3', { hints: both('n3', 'zone-b') })]));
  t.deepEqual(topo(cache), ['10.1.0.1:8080']);
  // No endpoint on this node: the zone hints decide.
  t.deepEqual(topo(cache, { zone: 'zone-a', nodeName: 'n9' }), ['10.1.0.1:8080', '10.1.0.2:8080']);
  // One endpoint without a node hint: the node hints are ignored, the zone hints still count.
  put(cache, slice('web-b', [ep('10.1.0.4', { hints: zones('zone-b') })]));
  t.deepEqual(topo(cache), ['10.1.0.1:8080', '10.1.0.2:8080']);
});

test('topology: a Local traffic policy (accept) wins over hints', (t) => {
  t.deepEqual(
    topo(hinted(), HERE, (n) => n === 'n2'),
    ['10.1.0.2:8080'],
  );
});

test('topology: with no ready endpoint, the serving-terminating fallback ignores hints', (t) => {
  const cache = new EndpointsCache();
  put(
    cache,
    slice('web-a', [
      ep('10.1.0.1', { ready: false, serving: true, terminating: true, hints: zones('zone-a') }),
      ep('10.1.0.2', { ready: false, serving: true, terminating: true, hints: zones('zone-b') }),
    ]),
  );
  t.deepEqual(topo(cache), ['10.1.0.1:8080', '10.1.0.2:8080']);
});

test('topology: an address listed in two slices keeps the hints of the first that has them', (t) => {
  const cache = new EndpointsCache();
  put(cache, slice('web-a', [ep('10.1.0.1'), ep('10.1.0.2', { hints: zones('zone-b') })]), slice('web-b', [ep('10.1.0.1', { hints: zones('zone-a') })]));
  t.deepEqual(topo(cache), ['10.1.0.1:8080']);
});

test("a family filter keeps that family's slices only, and the terminating fallback applies within it", (t) => {
  const cache = new EndpointsCache();
  put(
    cache,
    slice('web-v4', [ep('10.1.0.1'), ep('10.1.0.2', { nodeName: 'other' })]),
    slice('web-v6', [ep('fd00::1', { ready: false, serving: true, terminating: true })], undefined, { addressType: 'IPv6' }),
  );
  const of = (filter: Parameters<EndpointsCache['endpointsFor']>[2]): string[] => cache.endpointsFor(svc(), HTTP, filter).map((e) => e.key);
  t.deepEqual(of({}), ['10.1.0.1:8080', '10.1.0.2:8080'], 'no filter: the ready ones of both families');
  t.deepEqual(of({ family: 'IPv4' }), ['10.1.0.1:8080', '10.1.0.2:8080']);
  t.deepEqual(of({ family: 'IPv6' }), ['[fd00::1]:8080'], 'IPv6: its only endpoint is terminating, and still serving');
  t.deepEqual(of({ family: 'IPv4', accept: (n) => n === 'other' }), ['10.1.0.2:8080'], 'both filters at once');
});

test("a service's slices are followed as they come and go, one or several at a time", (t) => {
  const cache = new EndpointsCache();
  const names = (): string[] => cache.slicesOf('default/web').map((s) => s.name);
  put(cache, slice('web-a', [ep('10.1.0.1')]));
  t.deepEqual(names(), ['web-a']);
  put(cache, slice('web-a', [ep('10.1.0.2')]));
  t.deepEqual(names(), ['web-a']);
  t.deepEqual(keys(cache), ['10.1.0.2:8080']);
  put(cache, slice('web-b', [ep('10.1.0.3')]), slice('web-c', [ep('10.1.0.4')]));
  t.deepEqual(names(), ['web-a', 'web-b', 'web-c']);
  t.deepEqual(keys(cache), ['10.1.0.2:8080', '10.1.0.3:8080', '10.1.0.4:8080']);
  cache.update('default/web-a', undefined);
  cache.update('default/web-c', undefined);
  t.deepEqual(names(), ['web-b']);
  t.deepEqual(keys(cache), ['10.1.0.3:8080']);
  cache.update('default/web-b', undefined);
  t.deepEqual(names(), []);
  t.deepEqual(keys(cache), []);
  put(cache, slice('web-d', [ep('10.1.0.5')]));
  t.deepEqual(names(), ['web-d']);
  // Moved to another service: gone from this one.
  t.deepEqual(cache.update('default/web-d', slice('web-d', [ep('10.1.0.5')], undefined, { serviceName: 'other' })).sort(), ['default/other', 'default/web']);
  t.deepEqual(names(), []);
  t.deepEqual(
    cache.slicesOf('default/other').map((s) => s.name),
    ['web-d'],
  );
  t.is(cache.size, 1);
});

test('a service whose one slice has one address gets what the merge of several slices gives for it', (t) => {
  const conditions: Array<Partial<EndpointSpec>> = [
    {},
    { ready: false },
    { ready: false, serving: true, terminating: true },
    { ready: false, serving: false, terminating: true },
    { nodeName: 'node-a' },
    { hints: { forZones: ['zone-a'], forNodes: [] } },
    { hints: { forZones: [], forNodes: ['node-a'] } },
    { hints: { forZones: ['zone-b'], forNodes: ['node-b'] } },
    { targetRef: { kind: 'Pod', namespace: 'default', name: 'web-0' } },
  ];
  const httpOnly: ServicePortSpec = { ...HTTP, targetPort: 8081 };
  const filters = [{}, { accept: (n: string) => n === 'node-a' }, { family: 'IPv4' as const }, { family: 'IPv6' as const }, { topology: { zone: 'zone-a', nodeName: 'node-a' } }];
  let compared = 0;
  for (const c of conditions) {
    for (const [ports, extra] of [
      [[{ name: 'http', protocol: 'TCP', port: 8080 }], {}],
      [NO_PORTS, {}],
      [[{ name: 'other', protocol: 'TCP', port: 8080 }], {}],
      [[{ name: 'http', protocol: 'TCP', port: 8080 }], { addressType: 'FQDN' }],
    ] as Array<[EndpointPortSpec[] | null, Partial<EndpointSliceSpec>]>) {
      const one = new EndpointsCache();
      put(one, slice('a', [ep('10.1.0.1', c)], ports, extra));
      // A second slice without endpoints changes nothing but the way there: the general merge.
      const two = new EndpointsCache();
      put(two, slice('a', [ep('10.1.0.1', c)], ports, extra), slice('b', [], ports, extra));
      for (const port of [HTTP, httpOnly]) {
        for (const filter of filters) {
          t.deepEqual(one.endpointsFor(svc(), port, filter), two.endpointsFor(svc(), port, filter), JSON.stringify({ c, ports, extra, port, filter }));
          compared += one.endpointsFor(svc(), port, filter).length;
        }
      }
    }
  }
  t.true(compared > 0);
});
