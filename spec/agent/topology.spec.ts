import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { rootLogger } from '../../lib/log.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ServiceSource } from '../../lib/source/service-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { backendFor, tcpName, tcpRequest } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

// Topology-aware routing over the whole path: this node's Node (from the API through the real
// client-node informer, or from manifests), EndpointSlice hints, the agent and real sockets.
// Backends are on loopback, which the API source refuses in production; allowLoopbackEndpoints
// opens that one door for tests that may target only loopback.

for (const transport of rootLogger.transports) transport.silent = process.env['KUP_TEST_LOGS'] !== '1';

const ip = loopbackBlock(137);
const ZONE = 'topology.kubernetes.io/zone';

function service(name: string, clusterIP: string, port: number, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ports: [{ name: 'p', port, protocol: 'TCP', targetPort: port }], ...extra },
  };
}

interface Hinted {
  readonly backend: Backend;
  readonly nodeName: string;
  readonly zone: string;
  /** Hints: zones and nodes. Undefined: no hints at all. */
  readonly forZones?: string[];
  readonly forNodes?: string[];
}

/** One slice per backend (each listens on its own port), as the hints the control plane writes. */
function slice(svc: string, name: string, e: Hinted): KubeObject {
  const hints =
    e.forZones || e.forNodes ? { hints: { ...(e.forZones ? { forZones: e.forZones.map((z) => ({ name: z })) } : {}), ...(e.forNodes ? { forNodes: e.forNodes.map((n) => ({ name: n })) } : {}) } } : {};
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [e.backend.host], conditions: { ready: true }, nodeName: e.nodeName, zone: e.zone, ...hints }],
    ports: [{ name: 'p', port: e.backend.port, protocol: 'TCP' }],
  };
}

function nodeObject(name: string, labels: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } };
}

async function backends(t: ExecutionContext, ...names: Array<[string, number]>): Promise<Backend[]> {
  return Promise.all(names.map(([n, host]) => backendFor(t, tcpName(n, ip(host)))));
}

async function startAgent(t: ExecutionContext, source: ServiceSource, nodeName: string): Promise<Agent> {
  const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 60_000, minSyncPeriodMs: 0, nodeName }, source });
  t.teardown(() => agent.destroy());
  await agent.start();
  return agent;
}

async function apiAgent(t: ExecutionContext, seed: (api: TestApiServer) => void, nodeName: string): Promise<TestApiServer> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  seed(api);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  await startAgent(t, new KubeSource({ kubeConfig, nodeName, backoff: { initialMs: 50, maxMs: 400 }, allowLoopbackEndpoints: true }), nodeName);
  return api;
}

/** The backends that answer `n` connections to the portal (round robin: n ≥ the endpoint count sees them all). */
async function answering(host: string, port: number, n = 6): Promise<string> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await tcpRequest(host, port)).toString());
  return [...seen].sort().join(',');
}

test("zone hints: the Node's zone label narrows to that zone's endpoints; a label change re-routes at once", async (t) => {
  const [a, b, c] = await backends(t, ['a', 101], ['b', 102], ['c', 103]);
  const api = await apiAgent(
    t,
    (api) => {
      api.create('nodes', nodeObject('node-a', {}));
      api.create('services', service('web', ip(1), 7000, { trafficDistribution: 'PreferClose' }));
      api.create('endpointslices', slice('web', 'web-a', { backend: a!, nodeName: 'node-a', zone: 'zone-a', forZones: ['zone-a'] }));
      api.create('endpointslices', slice('web', 'web-b', { backend: b!, nodeName: 'node-b', zone: 'zone-b', forZones: ['zone-b'] }));
      api.create('endpointslices', slice('web', 'web-c', { backend: c!, nodeName: 'node-c', zone: 'zone-a', forZones: ['zone-a'] }));
    },
    'node-a',
  );
  // No zone known yet: every endpoint.
  t.is(await answering(ip(1), 7000), 'a,b,c');

  api.update('nodes', nodeObject('node-a', { [ZONE]: 'zone-a' }));
  await waitFor('only zone-a', async () => (await answering(ip(1), 7000)) === 'a,c');
  api.update('nodes', nodeObject('node-a', { [ZONE]: 'zone-b' }));
  await waitFor('only zone-b', async () => (await answering(ip(1), 7000)) === 'b');
  // A zone without endpoints hinted for it: kube-proxy's fallback to every endpoint.
  api.update('nodes', nodeObject('node-a', { [ZONE]: 'zone-z' }));
  await waitFor('all again', async () => (await answering(ip(1), 7000)) === 'a,b,c');

  // Hints change under a fixed zone: one endpoint losing its hint turns topology off.
  api.update('nodes', nodeObject('node-a', { [ZONE]: 'zone-b' }));
  await waitFor('only zone-b', async () => (await answering(ip(1), 7000)) === 'b');
  api.update('endpointslices', slice('web', 'web-c', { backend: c!, nodeName: 'node-c', zone: 'zone-a' }));
  await waitFor('all: one endpoint has no hint', async () => (await answering(ip(1), 7000)) === 'a,b,c');
});

test('node hints (PreferSameNode) and the Local traffic policy, which wins over hints', async (t) => {
  const [a, b, c] = await backends(t, ['a', 111], ['b', 112], ['c', 113]);
  const both = (backend: Backend, node: string, zone: string): Hinted => ({ backend, nodeName: node, zone, forNodes: [node], forZones: [zone] });
  const api = await apiAgent(
    t,
    (api) => {
      api.create('nodes', nodeObject('node-b', { [ZONE]: 'zone-a' }));
      api.create('services', service('same-node', ip(2), 7001, { trafficDistribution: 'PreferSameNode' }));
      api.create('endpointslices', slice('same-node', 'sn-a', both(a!, 'node-a', 'zone-a')));
      api.create('endpointslices', slice('same-node', 'sn-b', both(b!, 'node-b', 'zone-a')));
      api.create('endpointslices', slice('same-node', 'sn-c', both(c!, 'node-c', 'zone-b')));
      api.create('services', service('local', ip(3), 7002, { internalTrafficPolicy: 'Local' }));
      api.create('endpointslices', slice('local', 'l-a', both(a!, 'node-a', 'zone-a')));
      api.create('endpointslices', slice('local', 'l-b', both(b!, 'node-b', 'zone-a')));
    },
    'node-b',
  );
  t.is(await answering(ip(2), 7001), 'b');
  t.is(await answering(ip(3), 7002), 'b');
  // Hints that would send this node to node-a's endpoint: the Local policy still takes only this
  // node's (hints applied first would leave it nothing).
  api.update('endpointslices', slice('local', 'l-b', { ...both(b!, 'node-b', 'zone-a'), forNodes: ['node-a'] }));
  api.update('endpointslices', slice('local', 'l-a', { ...both(a!, 'node-a', 'zone-a'), forNodes: ['node-b'] }));
  // The same-node endpoint goes: zone hints decide (this node is in zone-a). Slice events arrive
  // in order, so once this shows, the updates above have been applied too.
  api.delete('endpointslices', 'default', 'sn-b');
  await waitFor('zone-a by zone hints', async () => (await answering(ip(2), 7001)) === 'a');
  t.is(await answering(ip(3), 7002), 'b');
});

test('manifest mode: --node-labels give the zone', async (t) => {
  const [a, b] = await backends(t, ['a', 121], ['b', 122]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-topology-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const write = async (name: string, objects: KubeObject[]): Promise<void> => {
    await writeFile(path.join(dir, `.${name}.tmp`), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    await rename(path.join(dir, `.${name}.tmp`), path.join(dir, name));
  };
  await write('web.json', [
    service('web', ip(4), 7003),
    slice('web', 'web-a', { backend: a!, nodeName: 'node-a', zone: 'zone-a', forZones: ['zone-a'] }),
    slice('web', 'web-b', { backend: b!, nodeName: 'node-b', zone: 'zone-b', forZones: ['zone-b'] }),
  ]);

  await startAgent(t, new ManifestSource({ paths: [dir], nodeName: 'node-m', nodeLabels: { [ZONE]: 'zone-b' } }), 'node-m');
  t.is(await answering(ip(4), 7003), 'b');
});

test('manifest mode: a Node manifest gives the zone, and editing it re-routes', async (t) => {
  const [a, b] = await backends(t, ['a', 131], ['b', 132]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-topology-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const write = async (name: string, objects: KubeObject[]): Promise<void> => {
    await writeFile(path.join(dir, `.${name}.tmp`), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    await rename(path.join(dir, `.${name}.tmp`), path.join(dir, name));
  };
  await write('web.json', [
    service('web', ip(5), 7004),
    slice('web', 'web-a', { backend: a!, nodeName: 'node-a', zone: 'zone-a', forZones: ['zone-a'] }),
    slice('web', 'web-b', { backend: b!, nodeName: 'node-b', zone: 'zone-b', forZones: ['zone-b'] }),
  ]);
  await write('node.json', [nodeObject('node-m', { [ZONE]: 'zone-a' })]);
  await startAgent(t, new ManifestSource({ paths: [dir], nodeName: 'node-m' }), 'node-m');
  t.is(await answering(ip(5), 7004), 'a');
  await write('node.json', [nodeObject('node-m', { [ZONE]: 'zone-b' })]);
  await waitFor('zone-b', async () => (await answering(ip(5), 7004)) === 'b');
  // Another node's manifest says nothing about this one.
  await write('node.json', [nodeObject('node-x', { [ZONE]: 'zone-a' })]);
  await waitFor('no zone: every endpoint', async () => (await answering(ip(5), 7004)) === 'a,b');
});
