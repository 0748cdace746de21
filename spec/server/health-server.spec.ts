import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { ClosedError, InvalidConfigError, PortConflictError } from '../../lib/errors.js';
import { HealthServer } from '../../lib/server/health-server.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { waitFor } from '../helpers/wait-for.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { FailingRules, get, startHealthServer, startProxy, withHealth } from './fixture.js';
import type { AgentView } from '../../lib/server/agent-view.js';
import type { SourceHealth } from '../../lib/source/service-source.js';

const ip = loopbackBlock(71);
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

interface HealthzJson {
  lastUpdated: string;
  currentTime: string;
  nodeEligible: boolean;
  reason?: string;
}

type LivezJson = Omit<HealthzJson, 'nodeEligible'>;

test("/healthz: 200 with kube-proxy's JSON once the agent has synced", async (t) => {
  const { agent } = await startProxy(t, { 'a.yaml': serviceYaml('a', ip(1), [{ name: 'http', port: 8080 }]) });
  const { url } = await startHealthServer(t, agent);
  const res = await waitFor('a healthy answer', async () => {
    const r = await get(`${url}/healthz`);
    return r.status === 200 ? r : undefined;
  });
  t.is(res.headers['content-type'], 'application/json');
  t.is(res.headers['x-content-type-options'], 'nosniff');
  const body = JSON.parse(res.body) as HealthzJson;
  t.deepEqual(Object.keys(body).sort(), ['currentTime', 'lastUpdated', 'nodeEligible']);
  t.true(body.nodeEligible);
  t.regex(body.lastUpdated, RFC3339);
  t.regex(body.currentTime, RFC3339);
  t.true(Date.parse(body.lastUpdated) <= Date.parse(body.currentTime));
  t.true(Date.now() - Date.parse(body.lastUpdated) < 5000);
});

test("/livez: kube-proxy's JSON, 200 while only the source, a listener or draining make /healthz 503", async (t) => {
  let stale = false;
  const health = (): SourceHealth => ({ connected: !stale, lastSuccessMs: stale ? Date.now() - 3_600_000 : Date.now(), informerRestarts: 0 });
  // Another socket holds the service's portal: a listener that cannot open.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ host: ip(8), port: 8080 }, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  // A long sync period: the syncs that do succeed stay recent however slow the machine is.
  const { agent } = await startProxy(t, { 'b.yaml': serviceYaml('b', ip(8), [{ name: 'http', port: 8080 }]) }, { source: (m) => withHealth(m, health), config: { syncPeriodMs: 60_000 } });
  const { url } = await startHealthServer(t, agent);
  stale = true;
  t.is((await get(`${url}/healthz`)).status, 503);
  const res = await get(`${url}/livez`);
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'application/json');
  t.is(res.headers['x-content-type-options'], 'nosniff');
  const body = JSON.parse(res.body) as LivezJson;
  t.deepEqual(Object.keys(body).sort(), ['currentTime', 'lastUpdated']);
  t.regex(body.currentTime, RFC3339);
  await agent.drain(0);
  t.is((await get(`${url}/livez`)).status, 200);
});

test('/livez: a draining agent stays live past two sync periods without a sync', async (t) => {
  const { agent } = await startProxy(t, { 'd.yaml': serviceYaml('d', ip(10), [{ name: 'http', port: 8080 }]) });
  const { url } = await startHealthServer(t, agent);
  await agent.drain(0);
  // The fixture's sync period is 200 ms; draining stops the syncs: wait out two periods after the
  // last one, as measured by the agent's own clock.
  const last = agent.health().lastUpdatedMs!;
  await waitFor('two sync periods without a sync', () => Date.now() - last > 400);
  t.is((await get(`${url}/livez`)).status, 200);
  t.is((await get(`${url}/healthz`)).status, 503);
});

test('/livez: 503 once no sync has succeeded for two sync periods, 200 again after one does', async (t) => {
  const rules = new FailingRules();
  // The fixture's sync period is 200 ms: two of them pass quickly while the rules keep failing.
  const { agent } = await startProxy(t, { 'b.yaml': serviceYaml('b', ip(2), [{ name: 'http', port: 8080 }]) }, { rules });
  const { url } = await startHealthServer(t, agent);
  const stuck = await waitFor('a 503 from /livez', async () => {
    const r = await get(`${url}/livez`);
    return r.status === 503 ? r : undefined;
  });
  const body = JSON.parse(stuck.body) as LivezJson;
  t.is(body.lastUpdated, '0001-01-01T00:00:00Z');
  t.regex(body.reason ?? '', /no successful sync/);
  rules.failing = false;
  await waitFor('a 200 from /livez', async () => (await get(`${url}/livez`)).status === 200);
});

test('/healthz: 503 with the reason while the rules fail to apply, 200 again once they apply', async (t) => {
  const rules = new FailingRules();
  const { agent } = await startProxy(t, { 'c.yaml': serviceYaml('c', ip(3), [{ name: 'http', port: 8080 }]) }, { rules });
  const { url } = await startHealthServer(t, agent);
  const res = await get(`${url}/healthz`);
  t.is(res.status, 503);
  t.is(res.headers['content-type'], 'application/json');
  t.is(res.headers['x-content-type-options'], 'nosniff');
  const body = JSON.parse(res.body) as HealthzJson;
  t.regex(body.reason ?? '', /rules failed to apply: iptables-restore failed/);
  t.regex(body.currentTime, RFC3339);
  // Never synced successfully: Go's zero time, as kube-proxy reports it.
  t.is(body.lastUpdated, '0001-01-01T00:00:00Z');
  rules.failing = false;
  const ok = await waitFor('a healthy answer', async () => {
    const r = await get(`${url}/healthz`);
    return r.status === 200 ? r : undefined;
  });
  t.is((JSON.parse(ok.body) as HealthzJson).reason, undefined);
});

test('/healthz: 503 when the service source is stale past twice the sync period', async (t) => {
  let stale = false;
  const health = (): SourceHealth => {
    const lastSuccessMs = stale ? Date.now() - 60_000 : Date.now();
    return { connected: !stale, lastSuccessMs, lastError: 'connect ECONNREFUSED 10.0.0.1:6443', informerRestarts: 3 };
  };
  const { agent } = await startProxy(t, { 'd.yaml': serviceYaml('d', ip(4), [{ name: 'http', port: 8080 }]) }, { source: (m) => withHealth(m, health) });
  const { url } = await startHealthServer(t, agent);
  await waitFor('a healthy answer', async () => (await get(`${url}/healthz`)).status === 200);
  // syncPeriodMs is 200 in the fixture: 2 × 200 ms is long past.
  stale = true;
  const res = await get(`${url}/healthz`);
  t.is(res.status, 503);
  t.regex((JSON.parse(res.body) as HealthzJson).reason ?? '', /service source stale.*ECONNREFUSED/);
  stale = false;
  t.is((await get(`${url}/healthz`)).status, 200);
});

test('/healthz: 503 while a listener failed to open', async (t) => {
  // Another socket holds the service's portal.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ host: ip(5), port: 8080 }, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  // With an endpoint: a port without endpoints is not listened on in none mode, so would not fail.
  const { agent } = await startProxy(t, {
    'e.yaml': serviceYaml('e', ip(5), [{ name: 'http', port: 8080 }]),
    'e-slice.yaml': sliceYaml('e', 'e-1', [{ name: 'http', port: 8080 }], [{ ip: ip(105) }]),
  });
  const { url } = await startHealthServer(t, agent);
  const res = await get(`${url}/healthz`);
  t.is(res.status, 503);
  t.regex((JSON.parse(res.body) as HealthzJson).reason ?? '', /1 listener failed to open/);
});

test('/healthz: 503 "draining" while the agent drains', async (t) => {
  const { agent } = await startProxy(t, { 'f.yaml': serviceYaml('f', ip(6), [{ name: 'http', port: 8080 }]) });
  const { url } = await startHealthServer(t, agent);
  await waitFor('a healthy answer', async () => (await get(`${url}/healthz`)).status === 200);
  await agent.drain(0);
  const res = await get(`${url}/healthz`);
  t.is(res.status, 503);
  t.regex((JSON.parse(res.body) as HealthzJson).reason ?? '', /draining/);
});

test('unknown paths are 404, other methods 405, HEAD has headers and no body', async (t) => {
  const { agent } = await startProxy(t, { 'g.yaml': serviceYaml('g', ip(7), [{ name: 'http', port: 8080 }]) });
  const { url } = await startHealthServer(t, agent);
  t.is((await get(`${url}/metrics`)).status, 404);
  const post = await get(`${url}/healthz`, 'POST');
  t.is(post.status, 405);
  t.is(post.headers['allow'], 'GET, HEAD');
  const head = await get(`${url}/livez`, 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.true(Number(head.headers['content-length']) > 2);
  t.is((await get(`${url}/livez?verbose=1`)).status, 200);
});

/** A healthy agent double, for the lifecycle tests that need no proxying. */
const healthyAgent: AgentView = {
  status: () => [],
  health: () => ({ healthy: true, reasons: [], lastUpdatedMs: Date.now(), draining: false }),
  counts: () => ({ services: 0, servicePorts: 0, endpoints: 0 }),
  redirectMode: 'none',
  sourceHealth: () => undefined,
};

test('close() is idempotent and releases the port; start() after close rejects with ClosedError', async (t) => {
  const server = new HealthServer({ address: '127.0.0.1:0', agent: healthyAgent });
  await server.start();
  const { port } = server.address()!;
  await Promise.all([server.close(), server.close()]);
  await server.close();
  t.is(server.address(), undefined);
  await t.throwsAsync(server.start(), { instanceOf: ClosedError });
  // The port is free again.
  const again = new HealthServer({ address: `127.0.0.1:${port}`, agent: healthyAgent });
  t.teardown(() => again.close());
  await again.start();
  t.is((await get(`${again.url()!}/livez`)).status, 200);
});

test('close() waits for keep-alive clients without hanging; destroy() drops open connections', async (t) => {
  const server = new HealthServer({ address: '127.0.0.1:0', agent: healthyAgent });
  await server.start();
  t.is((await get(`${server.url()!}/healthz`)).status, 200); // leaves a keep-alive connection
  await server.close();
  const other = new HealthServer({ address: '127.0.0.1:0', agent: healthyAgent });
  await other.start();
  const { port } = other.address()!;
  const s = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => s.once('connect', resolve));
  const closed = new Promise((resolve) => s.once('close', resolve));
  other.destroy();
  other.destroy();
  await closed;
  t.true(s.destroyed);
});

test('a taken port rejects start() with PortConflictError; bad options are refused up front', async (t) => {
  const first = await startHealthServer(t, healthyAgent);
  const { port } = first.server.address()!;
  const second = new HealthServer({ address: `127.0.0.1:${port}`, agent: healthyAgent });
  await t.throwsAsync(second.start(), { instanceOf: PortConflictError, message: `port conflict: 127.0.0.1:${port} is already in use by another socket` });
  await second.close();
  t.throws(() => new HealthServer({ address: '127.0.0.1', agent: healthyAgent }), { instanceOf: InvalidConfigError, message: /healthz bind address: missing ":PORT"/ });
  t.throws(() => new HealthServer({ address: '127.0.0.1:0', agent: undefined as unknown as AgentView }), { instanceOf: InvalidConfigError });
});

test('a failed start() can be retried once the port is free', async (t) => {
  const first = new HealthServer({ address: '127.0.0.1:0', agent: healthyAgent });
  await first.start();
  const { port } = first.address()!;
  const second = new HealthServer({ address: `127.0.0.1:${port}`, agent: healthyAgent });
  t.teardown(() => second.close());
  await t.throwsAsync(second.start(), { instanceOf: PortConflictError });
  await first.close();
  await second.start();
  t.is((await get(`${second.url()!}/livez`)).status, 200);
});

// ---- nodeEligible, from this node's Node object in the API ---------------------------------------

function nodeObject(name: string, extra: { taints?: unknown[]; deletionTimestamp?: string } = {}): KubeObject {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name }, ...(extra.deletionTimestamp ? { deletionTimestamp: extra.deletionTimestamp } : {}) },
    spec: extra.taints ? { taints: extra.taints } : {},
  };
}

test("/healthz nodeEligible follows this node's Node in the API: the autoscaler's taint, deletion; /livez ignores it", async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', { metadata: { name: 'web' }, spec: { clusterIP: ip(9), ports: [{ name: 'http', port: 8080 }] } });
  api.create('nodes', nodeObject('node-h'));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const source = new KubeSource({ kubeConfig, nodeName: 'node-h', backoff: { initialMs: 50, maxMs: 400 } });
  const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 60_000, minSyncPeriodMs: 0, nodeName: 'node-h' }, source });
  t.teardown(() => agent.destroy());
  await agent.start();
  const { url } = await startHealthServer(t, agent);
  const healthz = async (): Promise<{ status: number; body: HealthzJson }> => {
    const r = await get(`${url}/healthz`);
    return { status: r.status, body: JSON.parse(r.body) as HealthzJson };
  };
  await waitFor('healthy and eligible', async () => (await healthz()).status === 200);
  t.true((await healthz()).body.nodeEligible);

  const taint = { key: 'ToBeDeletedByClusterAutoscaler', value: '1767225600', effect: 'NoSchedule' };
  api.update('nodes', nodeObject('node-h', { taints: [taint] }));
  const tainted = await waitFor('not eligible', async () => {
    const h = await healthz();
    return h.status === 503 ? h : undefined;
  });
  t.false(tainted.body.nodeEligible);
  t.regex(tainted.body.reason ?? '', /node node-h is tainted ToBeDeletedByClusterAutoscaler/);
  t.is((await get(`${url}/livez`)).status, 200);

  api.update('nodes', nodeObject('node-h'));
  await waitFor('eligible again', async () => (await healthz()).status === 200);

  api.update('nodes', nodeObject('node-h', { deletionTimestamp: '2026-01-01T00:00:00Z' }));
  const deleting = await waitFor('being deleted', async () => {
    const h = await healthz();
    return h.status === 503 ? h : undefined;
  });
  t.false(deleting.body.nodeEligible);
  t.regex(deleting.body.reason ?? '', /node node-h is being deleted/);
  t.is((await get(`${url}/livez`)).status, 200);
});
