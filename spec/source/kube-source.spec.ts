import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ClosedError, InvalidConfigError } from '../../lib/errors.js';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import type { NodeSpec } from '../../lib/model/node.js';
import type { ServiceSpec } from '../../lib/model/service.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import type { KubeSourceOptions } from '../../lib/source/kube-source.js';
import type { ServiceSourceHandler } from '../../lib/source/service-source.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { captureLogLines } from '../helpers/log-capture.js';

// ---- fixtures ----------------------------------------------------------------------------------

interface Delivery {
  readonly what: 'service' | 'slice';
  readonly key: string;
  readonly previous: ServiceSpec | EndpointSliceSpec | undefined;
  readonly current: ServiceSpec | EndpointSliceSpec | undefined;
}

/** Keeps the state a handler would build, and checks that every delivery is consistent with it. */
class Recorder implements ServiceSourceHandler {
  readonly services = new Map<string, ServiceSpec>();
  readonly slices = new Map<string, EndpointSliceSpec>();
  readonly deliveries: Delivery[] = [];
  /** Deliveries whose `previous` is not what was delivered before, or that change nothing. */
  readonly problems: string[] = [];
  synced = 0;
  /** What had been delivered when onSynced was called. */
  atSync: { services: number; slices: number } | undefined;

  onServiceChange(key: string, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    this.#apply('service', this.services, key, previous, current);
  }
  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    this.#apply('slice', this.slices, key, previous, current);
  }
  onSynced(): void {
    this.synced++;
    this.atSync = { services: this.services.size, slices: this.slices.size };
  }
  /** Every onNodeChange, in order. */
  readonly nodes: Array<NodeSpec | undefined> = [];
  onNodeChange(node: NodeSpec | undefined): void {
    this.nodes.push(node);
  }
  /** Index to pass to since(). */
  get mark(): number {
    return this.deliveries.length;
  }
  since(mark: number): Delivery[] {
    return this.deliveries.slice(mark);
  }
  deletes(mark = 0): Delivery[] {
    return this.since(mark).filter((d) => d.current === undefined);
  }

  #apply<S>(what: 'service' | 'slice', map: Map<string, S>, key: string, previous: S | undefined, current: S | undefined): void {
    if (!isDeepStrictEqual(map.get(key), previous)) this.problems.push(`${what} ${key}: previous is not what was delivered before`);
    if (isDeepStrictEqual(previous, current)) this.problems.push(`${what} ${key}: delivered without a difference`);
    if (current === undefined) map.delete(key);
    else map.set(key, current);
    this.deliveries.push({ what, key, previous: previous as never, current: current as never });
  }
}

function service(namespace: string, name: string, opts: { ip?: string; port?: number; labels?: Record<string, string>; annotations?: Record<string, string> } = {}): KubeObject {
  return {
    metadata: { namespace, name, ...(opts.labels ? { labels: opts.labels } : {}), ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      type: 'ClusterIP',
      clusterIP: opts.ip ?? '10.96.0.10',
      clusterIPs: [opts.ip ?? '10.96.0.10'],
      ports: [{ name: 'http', port: opts.port ?? 80, protocol: 'TCP', targetPort: 8080 }],
      sessionAffinity: 'None',
    },
    status: { loadBalancer: {} },
  };
}

function slice(
  namespace: string,
  name: string,
  serviceName: string,
  addresses: readonly string[],
  opts: { addressType?: 'IPv4' | 'IPv6'; port?: number; nodeName?: string; labels?: Record<string, string> } = {},
): KubeObject {
  return {
    metadata: { namespace, name, labels: { 'kubernetes.io/service-name': serviceName, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io', ...opts.labels } },
    addressType: opts.addressType ?? 'IPv4',
    endpoints: addresses.map((a, i) => ({ addresses: [a], conditions: { ready: true, serving: true, terminating: false }, nodeName: opts.nodeName ?? `node-${i}` })),
    ports: [{ name: 'http', port: opts.port ?? 8080, protocol: 'TCP' }],
  };
}

function endpoints(namespace: string, name: string, subsets: readonly { addresses: readonly string[]; port: number }[]): KubeObject {
  return {
    metadata: { namespace, name },
    subsets: subsets.map((s) => ({ addresses: s.addresses.map((ip) => ({ ip, nodeName: 'node-a' })), ports: [{ name: 'http', port: s.port, protocol: 'TCP' }] })),
  };
}

/** Small back-off so that fault tests take fractions of a second. */
const FAST_BACKOFF = { initialMs: 50, maxMs: 400 };

interface Fixture {
  readonly api: TestApiServer;
  readonly source: KubeSource;
  readonly rec: Recorder;
  /** start(), already called. */
  readonly started: Promise<void>;
}

async function apiServer(t: ExecutionContext): Promise<TestApiServer> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  return api;
}

function kubeConfigFor(api: TestApiServer): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig());
  return kc;
}

/** Starts a source against `api` (a fresh server when not given); does not wait for sync. */
async function startSource(t: ExecutionContext, options: Partial<KubeSourceOptions> = {}, given?: TestApiServer): Promise<Fixture> {
  const api = given ?? (await apiServer(t));
  const source = new KubeSource({ kubeConfig: kubeConfigFor(api), backoff: FAST_BACKOFF, ...options });
  t.teardown(() => source.close());
  const rec = new Recorder();
  const started = source.start(rec);
  started.catch(() => {});
  return { api, source, rec, started };
}

async function syncedSource(t: ExecutionContext, seed: (api: TestApiServer) => void, options: Partial<KubeSourceOptions> = {}): Promise<Fixture> {
  const api = await apiServer(t);
  seed(api);
  const f = await startSource(t, options, api);
  await f.started;
  // start() resolves once both lists are in; the watches open just after.
  await waitFor('both watches open', () => api.openWatches() === 2);
  return f;
}

// ---- log capture -------------------------------------------------------------------------------

/** Every log line of this process (stderr output is silenced to keep the test output readable). */
const logCapture = captureLogLines();
const logLines = logCapture.lines;
test.after.always(() => logCapture.close());

function linesWith(...parts: string[]): string[] {
  return logLines.filter((l) => parts.every((p) => l.includes(p)));
}

function field(line: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}=("(?:[^"\\\\]|\\\\.)*"|\\S+)`).exec(line);
  if (!m) return undefined;
  return m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1];
}

// ---- initial sync -------------------------------------------------------------------------------

test('delivers both initial lists, then calls onSynced exactly once', async (t) => {
  const { api, rec, source } = await syncedSource(t, (api) => {
    api.create('services', service('default', 'web', { ip: '10.96.0.1' }));
    api.create('services', service('shop', 'cart', { ip: '10.96.0.2' }));
    api.create('endpointslices', slice('default', 'web-a', 'web', ['10.1.0.1', '10.1.0.2'], { nodeName: 'node-a' }));
    api.create('endpointslices', slice('shop', 'cart-x', 'cart', ['10.1.1.1']));
  });
  t.is(rec.synced, 1);
  t.deepEqual(rec.atSync, { services: 2, slices: 2 });
  t.deepEqual([...rec.services.keys()].sort(), ['default/web', 'shop/cart']);
  const web = rec.services.get('default/web')!;
  t.deepEqual(web.clusterIPs, ['10.96.0.1']);
  t.deepEqual(web.ports, [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 0 }]);
  const webSlice = rec.slices.get('default/web-a')!;
  t.is(webSlice.serviceName, 'web');
  t.deepEqual(
    webSlice.endpoints.map((e) => [e.addresses[0], e.nodeName]),
    [
      ['10.1.0.1', 'node-a'],
      ['10.1.0.2', 'node-a'],
    ],
  );
  t.true(source.health().connected);
  // A later change is delivered, and onSynced is not called again.
  api.create('services', service('default', 'late'));
  await waitFor('late service', () => rec.services.has('default/late'));
  t.is(rec.synced, 1);
  t.deepEqual(rec.problems, []);
  // Lists are plain GETs and watches resume from the list's resourceVersion: what a real server expects.
  t.deepEqual(api.seen('services', 'list')[0]!.query, {});
  t.is(api.seen('services', 'watch')[0]!.query['watch'], 'true');
  t.regex(api.seen('services', 'watch')[0]!.query['resourceVersion'] ?? '', /^\d+$/);
});

test('is not synced until both initial lists are complete', async (t) => {
  const api = await apiServer(t);
  api.create('services', service('default', 'web'));
  api.create('endpointslices', slice('default', 'web-a', 'web', ['10.1.0.1']));
  const failing = api.fail({ status: 500, verbs: ['list'], resources: ['endpointslices'] });
  const { rec, started } = await startSource(t, {}, api);
  let resolved = false;
  // Handled both ways: a test that fails here closes the source, which rejects start().
  void started.then(
    () => (resolved = true),
    () => {},
  );
  await waitFor('services delivered', () => rec.services.has('default/web'));
  await waitFor('slices list retried', () => failing.hits >= 2);
  t.is(rec.synced, 0);
  t.false(resolved);
  failing.clear();
  await started;
  t.is(rec.synced, 1);
  t.deepEqual(rec.atSync, { services: 1, slices: 1 });
});

// ---- changes ------------------------------------------------------------------------------------

test('delivers adds, updates and deletes of services and slices, and nothing for metadata-only updates', async (t) => {
  const { api, rec } = await syncedSource(t, (api) => {
    api.create('services', service('default', 'web'));
  });
  let mark = rec.mark;
  api.create('services', service('default', 'api', { ip: '10.96.0.20' }));
  api.create('endpointslices', slice('default', 'api-1', 'api', ['10.1.0.5']));
  await waitFor('adds', () => rec.services.has('default/api') && rec.slices.has('default/api-1'));
  // Two informers, two streams: no order between a service and a slice.
  t.deepEqual(
    rec
      .since(mark)
      .map((d) => [d.what, d.key, d.previous === undefined])
      .sort(),
    [
      ['service', 'default/api', true],
      ['slice', 'default/api-1', true],
    ],
  );

  mark = rec.mark;
  api.update('services', service('default', 'api', { ip: '10.96.0.20', port: 81 }));
  api.update('endpointslices', slice('default', 'api-1', 'api', ['10.1.0.5', '10.1.0.6']));
  await waitFor('updates', () => rec.slices.get('default/api-1')?.endpoints.length === 2);
  t.is(rec.services.get('default/api')!.ports[0]!.port, 81);
  t.is(rec.since(mark).length, 2);

  // A new resourceVersion alone (an annotation, a status field the proxy does not use) is not a change.
  mark = rec.mark;
  api.update('services', service('default', 'api', { ip: '10.96.0.20', port: 81, annotations: { touched: 'yes' } }));
  api.delete('services', 'default', 'web');
  await waitFor('delete', () => !rec.services.has('default/web'));
  t.deepEqual(
    rec.since(mark).map((d) => [d.key, d.current === undefined]),
    [['default/web', true]],
  );

  mark = rec.mark;
  api.delete('endpointslices', 'default', 'api-1');
  await waitFor('slice delete', () => !rec.slices.has('default/api-1'));
  t.is(rec.since(mark).length, 1);
  t.deepEqual(rec.problems, []);
});

test('a service whose endpoints are split over two slices gets both, and loses only the deleted one', async (t) => {
  const { api, rec } = await syncedSource(t, (api) => {
    api.create('services', service('default', 'big'));
    api.create('endpointslices', slice('default', 'big-abc', 'big', ['10.2.0.1', '10.2.0.2']));
    api.create('endpointslices', slice('default', 'big-def', 'big', ['10.2.0.3']));
  });
  const forBig = (): string[] =>
    [...rec.slices.values()]
      .filter((s) => s.serviceName === 'big')
      .flatMap((s) => s.endpoints.map((e) => e.addresses[0]!))
      .sort();
  t.deepEqual(forBig(), ['10.2.0.1', '10.2.0.2', '10.2.0.3']);
  api.delete('endpointslices', 'default', 'big-abc');
  await waitFor('slice deleted', () => !rec.slices.has('default/big-abc'));
  t.deepEqual(forBig(), ['10.2.0.3']);
  t.deepEqual(rec.problems, []);
});

test('useEndpoints watches v1 Endpoints and delivers one slice per subset', async (t) => {
  const { api, rec } = await syncedSource(
    t,
    (api) => {
      api.create('services', service('default', 'legacy'));
      api.create(
        'endpoints',
        endpoints('default', 'legacy', [
          { addresses: ['10.3.0.1', '10.3.0.2'], port: 8080 },
          { addresses: ['10.3.0.3'], port: 9090 },
        ]),
      );
      // Ignored in this mode.
      api.create('endpointslices', slice('default', 'legacy-x', 'legacy', ['10.9.9.9']));
    },
    { useEndpoints: true },
  );
  t.deepEqual([...rec.slices.keys()].sort(), ['default/legacy/subset-0', 'default/legacy/subset-1']);
  t.deepEqual(
    rec.slices.get('default/legacy/subset-0')!.endpoints.map((e) => [e.addresses[0], e.nodeName]),
    [
      ['10.3.0.1', 'node-a'],
      ['10.3.0.2', 'node-a'],
    ],
  );
  t.deepEqual(api.seen('endpointslices', 'list'), []);

  api.update('endpoints', endpoints('default', 'legacy', [{ addresses: ['10.3.0.1'], port: 8080 }]));
  await waitFor('subset removed', () => !rec.slices.has('default/legacy/subset-1'));
  t.deepEqual(rec.slices.get('default/legacy/subset-0')!.endpoints.length, 1);
  api.delete('endpoints', 'default', 'legacy');
  await waitFor('endpoints deleted', () => rec.slices.size === 0);
  t.deepEqual(rec.problems, []);
});

// ---- filtering ----------------------------------------------------------------------------------

test('ignores services (and their slices) labelled for another proxy, unless the label names this one', async (t) => {
  const label = 'service.kubernetes.io/service-proxy-name';
  const seed = (api: TestApiServer): void => {
    api.create('services', service('default', 'plain'));
    api.create('services', service('default', 'ours', { labels: { [label]: 'kup' } }));
    api.create('services', service('default', 'theirs', { labels: { [label]: 'other' } }));
    api.create('endpointslices', slice('default', 'ours-1', 'ours', ['10.4.0.1'], { labels: { [label]: 'kup' } }));
    api.create('endpointslices', slice('default', 'theirs-1', 'theirs', ['10.4.0.2'], { labels: { [label]: 'other' } }));
  };
  const api = await apiServer(t);
  seed(api);
  const named = await startSource(t, { serviceProxyName: 'kup' }, api);
  const unnamed = await startSource(t, {}, api);
  await Promise.all([named.started, unnamed.started]);
  t.deepEqual([...named.rec.services.keys()].sort(), ['default/ours', 'default/plain']);
  t.deepEqual([...named.rec.slices.keys()], ['default/ours-1']);
  t.deepEqual([...unnamed.rec.services.keys()], ['default/plain']);
  t.deepEqual([...unnamed.rec.slices.keys()], []);

  // Gaining the label of another proxy is leaving this one.
  api.update('services', service('default', 'plain', { labels: { [label]: 'other' } }));
  await waitFor('plain left', () => !named.rec.services.has('default/plain') && !unnamed.rec.services.has('default/plain'));
  // And losing it is joining.
  api.update('services', service('default', 'theirs'));
  await waitFor('theirs joined', () => named.rec.services.has('default/theirs') && unnamed.rec.services.has('default/theirs'));
  t.deepEqual(named.rec.problems, []);
  t.deepEqual(unnamed.rec.problems, []);
});

test("ignores headless-labelled services and slices, whatever the label's value, as kube-proxy's selector does", async (t) => {
  const label = 'service.kubernetes.io/headless';
  const { api, rec } = await syncedSource(t, (api) => {
    api.create('services', service('default', 'web'));
    api.create('services', service('default', 'marked', { labels: { [label]: '' } }));
    api.create('endpointslices', slice('default', 'web-1', 'web', ['10.4.0.1']));
    // The endpoint controllers label a headless Service's slices; such a slice is dropped even
    // when its Service is not (and before validation: this one has a bad address).
    api.create('endpointslices', { ...slice('default', 'db-1', 'db', ['10.4.0']), metadata: { namespace: 'default', name: 'db-1', labels: { 'kubernetes.io/service-name': 'db', [label]: '' } } });
  });
  t.deepEqual([...rec.services.keys()], ['default/web']);
  t.deepEqual([...rec.slices.keys()], ['default/web-1']);
  t.deepEqual(linesWith('rejected kubernetes object', 'db-1'), []);

  // Gaining the label (any value) removes the service; losing it brings it back.
  api.update('services', service('default', 'web', { labels: { [label]: 'true' } }));
  api.update('endpointslices', slice('default', 'web-1', 'web', ['10.4.0.1'], { labels: { [label]: 'true' } }));
  await waitFor('web left', () => !rec.services.has('default/web') && !rec.slices.has('default/web-1'));
  api.update('services', service('default', 'marked'));
  await waitFor('marked joined', () => rec.services.has('default/marked'));
  t.deepEqual(rec.problems, []);
  // Client-side filtering: the requests carry no label selector.
  t.true(api.requests.every((r) => r.query['labelSelector'] === undefined));
});

// ---- this node ----------------------------------------------------------------------------------

function node(name: string, opts: { labels?: Record<string, string>; taints?: unknown[]; deletionTimestamp?: string } = {}): KubeObject {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...opts.labels }, ...(opts.deletionTimestamp ? { deletionTimestamp: opts.deletionTimestamp } : {}) },
    spec: opts.taints ? { taints: opts.taints } : {},
    status: {},
  };
}

test("watches only this node's Node, by field selector, and delivers its labels, taints and deletion", async (t) => {
  const zone = 'topology.kubernetes.io/zone';
  const api = await apiServer(t);
  api.create('services', service('default', 'web'));
  api.create('nodes', node('node-a', { labels: { [zone]: 'zone-a' } }));
  api.create('nodes', node('node-b', { labels: { [zone]: 'zone-b' } }));
  const { rec, started } = await startSource(t, { nodeName: 'node-a' }, api);
  await started;
  await waitFor('three watches open', () => api.openWatches() === 3 && rec.nodes.length === 1);
  t.is(rec.nodes[0]?.name, 'node-a');
  t.is(rec.nodes[0]?.labels[zone], 'zone-a');
  t.false(rec.nodes[0]?.deleting);
  for (const verb of ['list', 'watch'] as const)
    t.true(
      api.seen('nodes', verb).every((r) => r.query['fieldSelector'] === 'metadata.name=node-a'),
      verb,
    );

  // Another node's changes are not seen; this one's are, and only real differences.
  api.update('nodes', node('node-b', { labels: { [zone]: 'zone-c' } }));
  api.update('nodes', node('node-a', { labels: { [zone]: 'zone-a' } }));
  api.update('nodes', node('node-a', { labels: { [zone]: 'zone-b' } }));
  await waitFor('zone-b', () => rec.nodes.at(-1)?.labels[zone] === 'zone-b');
  t.is(rec.nodes.length, 2);

  api.update('nodes', node('node-a', { labels: { [zone]: 'zone-b' }, taints: [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' }] }));
  await waitFor('tainted', () => rec.nodes.at(-1)?.taints.length === 1);
  t.deepEqual(rec.nodes.at(-1)?.taints, [{ key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' }]);
  api.update('nodes', node('node-a', { labels: { [zone]: 'zone-b' }, deletionTimestamp: '2026-01-01T00:00:00Z' }));
  await waitFor('being deleted', () => rec.nodes.at(-1)?.deleting === true);
  // Gone altogether: its last state, as being deleted.
  api.update('nodes', node('node-a', { labels: { [zone]: 'zone-b' } }));
  await waitFor('not deleted', () => rec.nodes.at(-1)?.deleting === false);
  api.delete('nodes', '', 'node-a');
  await waitFor('deleted', () => rec.nodes.at(-1)?.deleting === true);
  t.is(rec.nodes.at(-1)?.labels[zone], 'zone-b');
  t.deepEqual(rec.problems, []);
});

test('sync does not wait for the Node: a node that cannot be read shows in health(), services still arrive', async (t) => {
  const api = await apiServer(t);
  api.create('services', service('default', 'web'));
  const forbidden = api.fail({ status: 403, resources: ['nodes'] });
  const { rec, source, started } = await startSource(t, { nodeName: 'node-a' }, api);
  await started;
  t.deepEqual([...rec.services.keys()], ['default/web']);
  t.deepEqual(rec.nodes, []);
  await waitFor('the node list failed', () => forbidden.hits > 0 && source.health().lastError !== undefined);
  t.false(source.health().connected);
  t.regex(source.health().lastError ?? '', /403|[Ff]orbidden/);
  // Once allowed, the node arrives and the source is whole again.
  api.create('nodes', node('node-a', { labels: { 'topology.kubernetes.io/zone': 'zone-a' } }));
  forbidden.clear();
  await waitFor('node delivered', () => rec.nodes.length === 1 && source.health().connected, 5000);
});

test('an invalid Node is rejected with a warning naming the field, and its last good state kept', async (t) => {
  const api = await apiServer(t);
  api.create('nodes', node('node-q', { labels: { 'topology.kubernetes.io/zone': 'zone-a' } }));
  const { rec, started } = await startSource(t, { nodeName: 'node-q' }, api);
  await started;
  await waitFor('node delivered', () => rec.nodes.length === 1);
  api.update('nodes', node('node-q', { taints: [{ effect: 'NoSchedule' }] }));
  await waitFor('warned', () => linesWith('rejected kubernetes object', 'node-q').length === 1);
  t.is(field(linesWith('rejected kubernetes object', 'node-q')[0]!, 'field'), 'spec.taints[0].key');
  t.is(rec.nodes.length, 1);
});

test('refuses loopback, link-local and metadata endpoint addresses with one warning each, keeping the rest', async (t) => {
  const ns = 'refuse-ns';
  const { api, rec } = await syncedSource(t, (api) => {
    api.create('services', service(ns, 'sneaky'));
    api.create('endpointslices', slice(ns, 'sneaky-v4', 'sneaky', ['10.5.0.1', '127.0.0.1', '169.254.169.254', '169.254.7.7', '0.0.0.0']));
    api.create('endpointslices', slice(ns, 'sneaky-v6', 'sneaky', ['2001:db8::1', '::1', 'fe80::1', 'fd00:ec2::254', '::ffff:127.0.0.1'], { addressType: 'IPv6' }));
    api.create('endpointslices', slice(ns, 'all-bad', 'sneaky', ['127.0.0.2']));
  });
  t.deepEqual(
    rec.slices.get(`${ns}/sneaky-v4`)!.endpoints.map((e) => e.addresses),
    [['10.5.0.1']],
  );
  t.deepEqual(
    rec.slices.get(`${ns}/sneaky-v6`)!.endpoints.map((e) => e.addresses),
    [['2001:db8::1']],
  );
  t.deepEqual(rec.slices.get(`${ns}/all-bad`)!.endpoints, []);

  const warned = (): string[] => linesWith('refused endpoint addresses', `slice=${ns}/`);
  const bySlice = Object.fromEntries(warned().map((l) => [field(l, 'slice'), field(l, 'refused')]));
  t.deepEqual(bySlice, {
    [`${ns}/sneaky-v4`]: '127.0.0.1 (loopback address), 169.254.169.254 (cloud metadata address (instance metadata service)), 169.254.7.7 (link-local address), 0.0.0.0 (unspecified address)',
    // IPv4-mapped: the converter writes it in RFC 5952 form; the kernel would connect to 127.0.0.1.
    [`${ns}/sneaky-v6`]: '::1 (loopback address), fe80::1 (link-local address), fd00:ec2::254 (cloud metadata address (AWS instance metadata service, IPv6)), ::ffff:7f00:1 (loopback address)',
    [`${ns}/all-bad`]: '127.0.0.2 (loopback address)',
  });
  t.is(warned().length, 3, 'one line per object');

  // A relist and an unrelated update of the slice do not warn again; a new bad address does.
  api.expire();
  api.update('endpointslices', slice(ns, 'sneaky-v4', 'sneaky', ['10.5.0.1', '10.5.0.9', '127.0.0.1', '169.254.169.254', '169.254.7.7', '0.0.0.0']));
  await waitFor('update', () => rec.slices.get(`${ns}/sneaky-v4`)?.endpoints.length === 2);
  api.update('endpointslices', slice(ns, 'all-bad', 'sneaky', ['127.0.0.2', '127.0.0.3']));
  await waitFor('new warning', () => warned().length === 4);
  t.deepEqual(rec.problems, []);
});

test('refuses bad addresses in v1 Endpoints too', async (t) => {
  const { rec } = await syncedSource(
    t,
    (api) => {
      api.create('services', service('ep-refuse', 'x'));
      api.create('endpoints', endpoints('ep-refuse', 'x', [{ addresses: ['10.6.0.1', '127.0.0.1', '169.254.169.254'], port: 80 }]));
    },
    { useEndpoints: true },
  );
  t.deepEqual(
    rec.slices.get('ep-refuse/x/subset-0')!.endpoints.map((e) => e.addresses[0]),
    ['10.6.0.1'],
  );
  t.is(linesWith('refused endpoint addresses', 'slice=ep-refuse/x/subset-0').length, 1);
});

// ---- invalid objects ----------------------------------------------------------------------------

test('an invalid object is rejected with one warning naming it, and its last good state is kept', async (t) => {
  const ns = 'invalid-ns';
  const { api, rec } = await syncedSource(t, (api) => {
    api.create('services', service(ns, 'web', { port: 80 }));
    api.create('endpointslices', slice(ns, 'web-1', 'web', ['10.7.0.1']));
    // Invalid from the start: never delivered.
    api.create('services', { metadata: { namespace: ns, name: 'broken' }, spec: { clusterIP: '10.96.1.1', ports: [{ port: 0 }] } });
  });
  t.false(rec.services.has(`${ns}/broken`));
  const rejected = (): string[] => linesWith('rejected kubernetes object', `namespace=${ns}`);
  t.is(rejected().length, 1);
  t.is(field(rejected()[0]!, 'kind'), 'Service');
  t.is(field(rejected()[0]!, 'name'), 'broken');
  t.is(field(rejected()[0]!, 'field'), 'spec.ports[0].port');

  const mark = rec.mark;
  const bad = service(ns, 'web', { port: 80 });
  (bad['spec'] as { ports: { port: number }[] }).ports[0]!.port = 70000;
  api.update('services', bad);
  api.update('endpointslices', { ...slice(ns, 'web-1', 'web', ['10.7.0.1']), addressType: 'Carrier-Pigeon' });
  await waitFor('two more warnings', () => rejected().length === 3);
  t.is(rejected().filter((l) => field(l, 'name') === 'web' && field(l, 'field') === 'spec.ports[0].port').length, 1);
  t.is(rejected().filter((l) => field(l, 'kind') === 'EndpointSlice' && field(l, 'field') === 'addressType').length, 1);
  t.is(
    field(
      rejected().find((l) => field(l, 'name') === 'web')!,
      'kept',
    ),
    'last good state',
  );

  // A relist shows the same bad versions again: no new warning, nothing delivered, nothing deleted.
  api.expire();
  await waitFor('relisted', () => api.seen('services', 'list').length >= 2 && api.seen('endpointslices', 'list').length >= 2);
  api.create('services', service(ns, 'marker'));
  await waitFor('marker', () => rec.services.has(`${ns}/marker`));
  t.is(rejected().length, 3);
  t.deepEqual(
    rec.since(mark).map((d) => d.key),
    [`${ns}/marker`],
  );
  t.is(rec.services.get(`${ns}/web`)!.ports[0]!.port, 80);
  t.is(rec.slices.get(`${ns}/web-1`)!.endpoints.length, 1);

  // Fixed: delivered.
  api.update('services', service(ns, 'web', { port: 8000 }));
  await waitFor('fixed', () => rec.services.get(`${ns}/web`)?.ports[0]!.port === 8000);
  t.deepEqual(rec.problems, []);
});

// ---- watch interruptions ------------------------------------------------------------------------

for (const abrupt of [false, true]) {
  test(`resumes after the server ${abrupt ? 'cuts' : 'ends'} the watch, delivering only what changed meanwhile`, async (t) => {
    const { api, rec, source } = await syncedSource(t, (api) => {
      for (let i = 0; i < 20; i++) api.create('services', service('default', `svc-${i}`));
      api.create('endpointslices', slice('default', 'svc-0-a', 'svc-0', ['10.8.0.1']));
    });
    const mark = rec.mark;
    const lists = api.seen('services', 'list').length;
    t.is(api.dropWatches({ abrupt }), 2);
    api.update('services', service('default', 'svc-3', { port: 99 }));
    api.delete('services', 'default', 'svc-4');
    api.update('endpointslices', slice('default', 'svc-0-a', 'svc-0', ['10.8.0.2']));
    await waitFor(
      'changes',
      () => rec.services.get('default/svc-3')?.ports[0]!.port === 99 && !rec.services.has('default/svc-4') && rec.slices.get('default/svc-0-a')?.endpoints[0]!.addresses[0] === '10.8.0.2',
    );
    t.deepEqual(
      rec
        .since(mark)
        .map((d) => d.key)
        .sort(),
      ['default/svc-0-a', 'default/svc-3', 'default/svc-4'],
    );
    // Resumed from the resourceVersion: no relist was needed.
    t.is(api.seen('services', 'list').length, lists);
    await waitFor('reconnected', () => api.openWatches() === 2 && source.health().connected);
    t.deepEqual(rec.problems, []);
  });
}

test('a BOOKMARK moves the point a dropped watch resumes from', async (t) => {
  const { api, rec } = await syncedSource(t, (api) => api.create('services', service('default', 'a')));
  // A slice change moves the global resourceVersion; the services watch sees only a bookmark.
  api.create('endpointslices', slice('default', 'a-1', 'a', ['10.14.0.1']));
  await waitFor('slice', () => rec.slices.has('default/a-1'));
  const rv = String(api.resourceVersion);
  const before = api.seen('services', 'watch').length;
  // Written before the end of the stream, so read before the client sees it end.
  api.bookmark('services');
  api.dropWatches({ resource: 'services' });
  await waitFor('re-watched', () => api.seen('services', 'watch').length > before);
  t.is(api.seen('services', 'watch').at(-1)!.query['resourceVersion'], rv);
});

test.serial('survives an API server restart: keeps state while down, then catches up', async (t) => {
  const { api, rec, source } = await syncedSource(t, (api) => {
    api.create('services', service('default', 'keep'));
    api.create('services', service('default', 'gone'));
    api.create('endpointslices', slice('default', 'keep-1', 'keep', ['10.9.0.1']));
  });
  const mark = rec.mark;
  const restarts = source.health().informerRestarts;
  const t0 = performance.now();
  await api.stop();
  await waitFor('disconnected', () => !source.health().connected);
  await waitFor('a few failed restarts', () => source.health().informerRestarts >= restarts + 4, 10_000);
  const down = source.health();
  t.false(down.connected);
  t.truthy(down.lastError);
  t.deepEqual(rec.since(mark), [], 'nothing delivered (and nothing deleted) while the server is down');
  // Changes made while it is down arrive after it is back.
  api.delete('services', 'default', 'gone');
  api.update('endpointslices', slice('default', 'keep-1', 'keep', ['10.9.0.2']));
  const t1 = performance.now();
  await api.restart();
  await waitFor('caught up', () => !rec.services.has('default/gone') && rec.slices.get('default/keep-1')?.endpoints[0]!.addresses[0] === '10.9.0.2', 5000);
  await waitFor('connected', () => source.health().connected);
  const t2 = performance.now();
  t.log(`server down ${Math.round(t1 - t0)} ms (${down.informerRestarts - restarts} restarts, last error: ${down.lastError}); caught up ${Math.round(t2 - t1)} ms after it came back`);
  t.deepEqual(
    rec
      .since(mark)
      .map((d) => d.key)
      .sort(),
    ['default/gone', 'default/keep-1'],
  );
  t.deepEqual(rec.problems, []);
});

test('relists after an ERROR 410 (Expired) event, delivering only real differences', async (t) => {
  const { api, rec } = await syncedSource(t, (api) => {
    for (const n of ['same', 'changed', 'removed']) api.create('services', service('default', n));
    api.create('endpointslices', slice('default', 'same-1', 'same', ['10.10.0.1']));
  });
  const mark = rec.mark;
  // The watches fall behind: changes happen that they never see, then the server expires them.
  api.pauseWatches();
  api.update('services', service('default', 'changed', { port: 8443 }));
  api.delete('services', 'default', 'removed');
  api.create('services', service('default', 'added'));
  // A new resourceVersion with no difference that matters.
  api.update('services', service('default', 'same', { annotations: { note: 'x' } }));
  const lists = api.seen('services', 'list').length;
  const t0 = performance.now();
  api.expire();
  await waitFor('relisted', () => rec.services.has('default/added') && !rec.services.has('default/removed'));
  t.log(`relisted ${Math.round(performance.now() - t0)} ms after the ERROR 410 event`);
  t.is(api.seen('services', 'list').length, lists + 1);
  t.deepEqual(
    rec
      .since(mark)
      .map((d) => [d.key, d.previous ? (d.current ? 'update' : 'delete') : 'add'])
      .sort(),
    [
      ['default/added', 'add'],
      ['default/changed', 'update'],
      ['default/removed', 'delete'],
    ],
  );
  t.deepEqual(rec.problems, []);
});

test('relists after HTTP 410 on the watch request, without deleting what is still there', async (t) => {
  const { api, rec } = await syncedSource(t, (api) => {
    for (let i = 0; i < 10; i++) api.create('services', service('default', `s${i}`));
    api.create('endpointslices', slice('default', 's0-a', 's0', ['10.11.0.1']));
  });
  const mark = rec.mark;
  api.pauseWatches('services');
  api.delete('services', 'default', 's9');
  const gone = api.fail({ status: 410, verbs: ['watch'], resources: ['services'], count: 1 });
  const lists = api.seen('services', 'list').length;
  api.dropWatches({ resource: 'services' });
  await waitFor('relisted', () => !rec.services.has('default/s9'));
  t.is(gone.hits, 1);
  t.is(api.seen('services', 'list').length, lists + 1);
  t.deepEqual(
    rec.since(mark).map((d) => [d.key, d.current === undefined]),
    [['default/s9', true]],
  );
  t.is(rec.services.size, 9);
  t.deepEqual(rec.problems, []);
});

test('a server answering every watch with 410 is relisted at a bounded rate, not in a loop', async (t) => {
  const api = await apiServer(t);
  api.create('services', service('default', 'a'));
  api.fail({ status: 410, verbs: ['watch'] });
  const { rec, started } = await startSource(t, {}, api);
  await started;
  // Not a loop: client-node waits 1 s, then 2 s, between such relists (a sibling informer's
  // recovery may bring one forward), where a loop would make hundreds a second. Polled, not slept:
  // a busy machine only makes the gaps longer.
  await waitFor('four lists of services', () => api.seen('services', 'list').length >= 4, 20_000);
  const at = api
    .seen('services', 'list')
    .slice(0, 4)
    .map((r) => r.atMs);
  const gaps = at.slice(1).map((ms, i) => Math.round(ms - at[i]!));
  t.log(`gaps between lists of services while every watch got 410: ${gaps.join(', ')} ms`);
  t.true(at[3]! - at[0]! >= 1000, `four lists within ${Math.round(at[3]! - at[0]!)} ms`);
  t.deepEqual(rec.deletes(), []);
  t.deepEqual(rec.problems, []);
});

test.serial('backs off through HTTP 500s with one warning per attempt, keeps state, and recovers', async (t) => {
  const { api, rec, source } = await syncedSource(t, (api) => {
    api.create('services', service('default', 'steady'));
    api.create('endpointslices', slice('default', 'steady-1', 'steady', ['10.12.0.1']));
  });
  const mark = rec.mark;
  const before = source.health();
  const firstLine = logLines.length;
  const outage = api.fail({ status: 500 });
  const t0 = performance.now();
  api.dropWatches();
  await waitFor('several restarts', () => source.health().informerRestarts >= before.informerRestarts + 6, 10_000);
  const during = source.health();
  t.false(during.connected);
  t.regex(during.lastError ?? '', /500/);
  t.deepEqual(rec.since(mark), [], 'nothing dropped during the outage');
  t.is(rec.services.size, 1);

  const warnings = logLines.slice(firstLine).filter((l) => l.includes('informer failed, restarting'));
  t.true(warnings.length >= 6);
  for (const resource of ['services', 'endpointslices']) {
    const steps = warnings.filter((l) => field(l, 'resource') === resource);
    const attempts = steps.map((l) => Number(field(l, 'attempt')));
    t.deepEqual(
      attempts,
      attempts.map((_, i) => i + 1),
      `${resource}: attempts count up from 1`,
    );
    const delays = steps.map((l) => Number(field(l, 'delayMs')));
    delays.forEach((d, i) => {
      const base = Math.min(FAST_BACKOFF.maxMs, FAST_BACKOFF.initialMs * 2 ** i);
      t.true(d >= base * 0.8 - 1 && d <= base * 1.2 + 1, `${resource} attempt ${i + 1}: ${d} ms within ±20% of ${base}`);
    });
    t.regex(field(steps[0]!, 'error') ?? '', /500/);
  }

  api.create('services', service('default', 'during'));
  outage.clear();
  const t1 = performance.now();
  await waitFor('recovered', () => source.health().connected && rec.services.has('default/during'), 5000);
  t.log(`HTTP 500 for ${Math.round(t1 - t0)} ms: ${during.informerRestarts - before.informerRestarts} restarts; recovered ${Math.round(performance.now() - t1)} ms after the errors stopped`);
  t.true(source.health().lastSuccessMs >= Date.now() - 5000);
  t.deepEqual(
    rec.since(mark).map((d) => d.key),
    ['default/during'],
  );

  // After a healthy spell longer than the longest delay, a new failure starts the back-off over,
  // even for the slices informer, whose quiet watch brought no event to reset it.
  await new Promise((r) => setTimeout(r, FAST_BACKOFF.maxMs + 100)); // a healthy spell is a duration, not a condition to poll
  const again = logLines.length;
  const blip = api.fail({ status: 500, verbs: ['watch'], resources: ['endpointslices'], count: 1 });
  api.dropWatches({ resource: 'endpointslices' });
  await waitFor('blip', () => blip.hits === 1 && logLines.slice(again).some((l) => l.includes('informer failed, restarting')));
  const blipLine = logLines.slice(again).find((l) => l.includes('informer failed, restarting'))!;
  t.is(field(blipLine, 'resource'), 'endpointslices');
  t.is(field(blipLine, 'attempt'), '1');
  await waitFor('reconnected', () => source.health().connected && api.openWatches() === 2);
  t.deepEqual(rec.problems, []);
});

test('malformed watch events are ignored with a warning, and the watch goes on', async (t) => {
  const { api, rec } = await syncedSource(t, (api) => api.create('services', service('default', 'a')));
  const mark = rec.mark;
  const before = linesWith('ignored malformed watch event').length;
  // Without the guard, each of the first three would be an unhandled rejection inside client-node.
  api.sendRaw('{"type":"ADDED","object":{}}', 'services');
  api.sendRaw('{"type":"ADDED","object":null}', 'services');
  api.sendRaw('{"type":"MODIFIED"}', 'services');
  api.sendRaw('this is not json', 'services');
  api.create('services', service('default', 'b'));
  await waitFor('next event', () => rec.services.has('default/b'));
  t.deepEqual(
    rec.since(mark).map((d) => d.key),
    ['default/b'],
  );
  t.is(linesWith('ignored malformed watch event').length - before, 3);
  t.true(rec.services.has('default/a'));
});

// ---- watchdog -----------------------------------------------------------------------------------

test('a watch silent past the configSyncPeriod bound is replaced by a relist that re-delivers nothing', async (t) => {
  const { api, rec, source } = await syncedSource(
    t,
    (api) => {
      for (let i = 0; i < 5; i++) api.create('services', service('default', `quiet-${i}`));
      api.create('endpointslices', slice('default', 'quiet-0-a', 'quiet-0', ['10.13.0.1']));
    },
    { configSyncPeriodMs: 300 },
  );
  const mark = rec.mark;
  const lists = api.seen('services', 'list').length;
  const t0 = performance.now();
  await waitFor('watchdog relist', () => api.seen('services', 'list').length > lists, 3000);
  t.log(`silent watch relisted after ${Math.round(performance.now() - t0)} ms (bound 300 ms)`);
  t.true(source.health().informerRestarts >= 1);
  t.deepEqual(rec.since(mark), [], 'a relist of unchanged objects delivers nothing');
  t.is(linesWith('informer silent, relisting', 'boundMs=300').length > 0, true);
  // Still watching: changes arrive.
  api.create('services', service('default', 'loud'));
  await waitFor('change after relist', () => rec.services.has('default/loud'));
  t.deepEqual(rec.problems, []);
});

test('the watchdog also rescues a list that never answers', async (t) => {
  const api = await apiServer(t);
  api.create('services', service('default', 'web'));
  const hang = api.fail({ status: 0, verbs: ['list'], resources: ['services'], count: 1 });
  const t0 = performance.now();
  const { rec, started } = await startSource(t, { configSyncPeriodMs: 400 }, api);
  await started;
  t.log(`synced ${Math.round(performance.now() - t0)} ms after start although the first list hung (bound 400 ms)`);
  t.is(hang.hits, 1);
  t.true(rec.services.has('default/web'));
  t.is(rec.synced, 1);
});

// ---- scale --------------------------------------------------------------------------------------

test.serial('lists 5,000 services and 5,000 slices at start', async (t) => {
  const api = await apiServer(t);
  const n = 5000;
  for (let i = 0; i < n; i++) {
    const ns = `ns-${i % 50}`;
    api.create('services', service(ns, `svc-${i}`, { ip: `10.${100 + Math.floor(i / 250)}.${i % 250}.1` }));
    api.create('endpointslices', slice(ns, `svc-${i}-abcde`, `svc-${i}`, [`10.200.${Math.floor(i / 250)}.${i % 250}`]));
  }
  const t0 = performance.now();
  const { rec, started, source } = await startSource(t, {}, api);
  await started;
  const ms = performance.now() - t0;
  t.log(`initial sync of ${n} services + ${n} slices: ${Math.round(ms)} ms`);
  t.true(ms < 10_000, 'a generous bound: a regression to seconds per thousand objects would show');
  t.is(rec.services.size, n);
  t.is(rec.slices.size, n);
  t.is(rec.synced, 1);
  // The informers' own add events for the listed objects are no-ops.
  t.is(rec.deliveries.length, 2 * n);
  t.true(source.health().connected);
  t.deepEqual(rec.problems, []);
});

// ---- lifecycle ----------------------------------------------------------------------------------

test('close() stops the watches and is idempotent; destroy() too; start() after close fails', async (t) => {
  const { api, source } = await syncedSource(t, (api) => api.create('services', service('default', 'a')));
  await waitFor('watching', () => api.openWatches() === 2);
  await Promise.all([source.close(), source.close()]);
  await waitFor('watches closed', () => api.openWatches() === 0);
  source.destroy();
  await t.throwsAsync(source.start(new Recorder()), { instanceOf: ClosedError });
  // Nothing comes back after close.
  const requests = api.requests.length;
  api.create('services', service('default', 'b'));
  api.dropWatches();
  await new Promise((r) => setTimeout(r, 300)); // a negative check: give a straggler time to show up
  t.is(api.requests.length, requests);
});

test('close() releases a watch request the server never answers', async (t) => {
  const api = await apiServer(t);
  api.create('services', service('default', 'a'));
  const hang = api.fail({ status: 0, verbs: ['watch'] });
  const { source, started } = await startSource(t, {}, api);
  await started;
  await waitFor('both watches hanging', () => hang.hits === 2 && api.hangingRequests === 2);
  const t0 = performance.now();
  await source.close();
  // client-node alone would hold them until its 30 s timeout.
  await waitFor('hung requests released', () => api.hangingRequests === 0, 2000);
  t.log(`hung watch requests released ${Math.round(performance.now() - t0)} ms after close()`);
  t.is(api.hangingRequests, 0);
});

test('closing before the first sync rejects start() with ClosedError', async (t) => {
  const api = await apiServer(t);
  api.fail({ status: 503 });
  const { source, started } = await startSource(t, {}, api);
  await waitFor('retrying', () => source.health().informerRestarts >= 2);
  source.destroy();
  await t.throwsAsync(started, { instanceOf: ClosedError });
});

test('refuses bad options with every problem listed', (t) => {
  const err = t.throws(() => new KubeSource({ kubeConfig: {} as KubeConfig, configSyncPeriodMs: 0, backoff: { initialMs: -1 } }), { instanceOf: InvalidConfigError });
  t.is(err?.problems.length, 3);
});

test('a token the server refuses keeps failing with 401, retried with back-off', async (t) => {
  const api = await apiServer(t);
  const kc = new KubeConfig();
  kc.loadFromString(api.kubeconfig({ token: 'wrong' }));
  const source = new KubeSource({ kubeConfig: kc, backoff: FAST_BACKOFF });
  t.teardown(() => source.close());
  source.start(new Recorder()).catch(() => {});
  await waitFor('restarts', () => source.health().informerRestarts >= 2);
  t.regex(source.health().lastError ?? '', /401/);
  t.false(source.health().connected);
});
