import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { RulesError } from '../../lib/errors.js';
import type { RuleBackend } from '../../lib/rules/rule-backend.js';
import { Metrics } from '../../lib/server/metrics.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { backendFor, tcpName, tcpRequest } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { FailingRules, get, sample, startHealthServer, startProxy, withHealth } from './fixture.js';

const ip = loopbackBlock(137);
const TRIGGER = 'endpoints.kubernetes.io/last-change-trigger-time';

// kube-proxy's definitions (pkg/proxy/metrics/metrics.go), written out independently of the code
// under test: ExponentialBuckets(0.001, 2, 15), and MergeBuckets (which starts from a 0 bucket) of
// LinearBuckets(0.25, 0.25, 2), (1, 1, 59), (60, 5, 12), (120, 30, 7).
const SYNC_BUCKETS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];
const PROGRAMMING_BUCKETS: number[] = [0, 0.25, 0.5];
for (let s = 1; s <= 59; s++) PROGRAMMING_BUCKETS.push(s);
for (let s = 60; s <= 115; s += 5) PROGRAMMING_BUCKETS.push(s);
for (let s = 120; s <= 300; s += 30) PROGRAMMING_BUCKETS.push(s);

/** Name, type and label names (besides `le`) of every kube-proxy metric a `none`-mode agent exports. */
const EXPECTED: ReadonlyArray<[string, 'histogram' | 'gauge' | 'counter', string[]]> = [
  ['kubeproxy_sync_proxy_rules_duration_seconds', 'histogram', ['ip_family']],
  ['kubeproxy_sync_proxy_rules_last_timestamp_seconds', 'gauge', ['ip_family']],
  ['kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', 'gauge', ['ip_family']],
  ['kubeproxy_network_programming_duration_seconds', 'histogram', ['ip_family']],
  ['kubeproxy_sync_proxy_rules_endpoint_changes_total', 'counter', []],
  ['kubeproxy_sync_proxy_rules_endpoint_changes_pending', 'gauge', []],
  ['kubeproxy_sync_proxy_rules_service_changes_total', 'counter', []],
  ['kubeproxy_sync_proxy_rules_service_changes_pending', 'gauge', []],
  ['kubeproxy_proxy_healthz_total', 'counter', ['code']],
  ['kubeproxy_proxy_livez_total', 'counter', ['code']],
  ['kubeproxy_sync_proxy_rules_no_local_endpoints_total', 'gauge', ['ip_family', 'traffic_policy']],
];

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The Prometheus text format, parsed: each metric's TYPE and its samples (histograms: with _bucket, _sum, _count). */
function parseExposition(text: string): Map<string, { type: string; samples: Sample[] }> {
  const out = new Map<string, { type: string; samples: Sample[] }>();
  let current: { type: string; samples: Sample[] } | undefined;
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      current = { type: type[2]!, samples: [] };
      out.set(type[1]!, current);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').split(/,(?=[a-zA-Z_]+=")/).filter(Boolean)) {
      const eq = pair.indexOf('=');
      labels[pair.slice(0, eq)] = JSON.parse(pair.slice(eq + 1)) as string;
    }
    current?.samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function annotated(yaml: string, triggerTime: string): string {
  return yaml.replace('metadata:\n', `metadata:\n  annotations:\n    ${TRIGGER}: "${triggerTime}"\n`);
}

function metricsFor(t: ExecutionContext, agent: Agent): Metrics {
  const metrics = new Metrics({ agent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  return metrics;
}

test("every kubeproxy_* metric is exported with kube-proxy's type, labels and buckets", async (t) => {
  const a = await backendFor(t, tcpName('a', ip(10)));
  let sourceFresh = true;
  const { agent, write } = await startProxy(
    t,
    { 'web.yaml': serviceYaml('web', ip(1), [{ name: 'http', port: 8080 }]) },
    { source: (m) => withHealth(m, () => ({ connected: true, lastSuccessMs: sourceFresh ? Date.now() : 0, informerRestarts: 0 })) },
  );
  const metrics = metricsFor(t, agent);
  const { url } = await startHealthServer(t, agent);
  // A slice written now, with its trigger time: one network programming observation.
  await write('web-slice.yaml', annotated(sliceYaml('web', 'web-1', [{ name: 'http', port: a.port }], [{ ip: ip(10) }]), new Date().toISOString()));
  await waitFor('the slice to serve', async () => (await tcpRequest(ip(1), 8080).catch(() => Buffer.alloc(0))).toString() === 'a');
  t.is((await get(`${url}/healthz`)).status, 200);
  sourceFresh = false;
  t.is((await get(`${url}/healthz`)).status, 503);
  t.is((await get(`${url}/livez`)).status, 200);
  const text = await waitFor('a sync and a programming observation', async () => {
    const m = await metrics.render();
    return (sample(m, 'kubeproxy_sync_proxy_rules_duration_seconds_count', { ip_family: 'IPv4' }) ?? 0) >= 1 &&
      sample(m, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }) === 1
      ? m
      : undefined;
  });

  const parsed = parseExposition(text);
  for (const [name, type, labels] of EXPECTED) {
    const family = parsed.get(name);
    if (!family) {
      t.fail(`${name} is missing`);
      continue;
    }
    t.is(family.type, type, name);
    t.true(family.samples.length > 0, `${name} has samples`);
    for (const s of family.samples) {
      const names = Object.keys(s.labels).filter((l) => !(type === 'histogram' && s.name.endsWith('_bucket') && l === 'le'));
      t.deepEqual(names.sort(), [...labels].sort(), `${s.name} ${JSON.stringify(s.labels)}`);
    }
  }
  const boundaries = (name: string): number[] =>
    parsed
      .get(name)!
      .samples.filter((s) => s.name === `${name}_bucket` && s.labels['le'] !== '+Inf')
      .map((s) => Number(s.labels['le']));
  t.deepEqual(boundaries('kubeproxy_sync_proxy_rules_duration_seconds'), SYNC_BUCKETS);
  t.deepEqual(boundaries('kubeproxy_network_programming_duration_seconds'), PROGRAMMING_BUCKETS);
  // No rules in none mode: neither rule-apply failure counter.
  t.false([...parsed.keys()].some((n) => n.includes('restore_failures') || n.includes('nftables')));

  // The health server's answers, counted by code.
  t.is(sample(text, 'kubeproxy_proxy_healthz_total', { code: '200' }), 1);
  t.is(sample(text, 'kubeproxy_proxy_healthz_total', { code: '503' }), 1);
  t.is(sample(text, 'kubeproxy_proxy_livez_total', { code: '200' }), 1);
  const now = Date.now() / 1000;
  const last = sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', { ip_family: 'IPv4' }) ?? 0;
  const queued = sample(text, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', { ip_family: 'IPv4' }) ?? 0;
  t.true(last > now - 60 && last <= now, `last sync ${last}, now ${now}`);
  t.true(queued > now - 60 && queued <= now, `last queued ${queued}, now ${now}`);
});

test('health probes are counted by code, /healthz and /livez apart, for real requests only', async (t) => {
  let fresh = true;
  const { agent } = await startProxy(
    t,
    { 'h.yaml': serviceYaml('h', ip(2), [{ name: 'http', port: 8080 }]) },
    { source: (m) => withHealth(m, () => ({ connected: true, lastSuccessMs: fresh ? Date.now() : 0, informerRestarts: 0 })) },
  );
  const metrics = metricsFor(t, agent);
  t.is(sample(await metrics.render(), 'kubeproxy_proxy_healthz_total', { code: '200' }), undefined);
  const { url } = await startHealthServer(t, agent);
  for (let i = 0; i < 3; i++) t.is((await get(`${url}/healthz`)).status, 200);
  fresh = false;
  for (let i = 0; i < 2; i++) t.is((await get(`${url}/healthz`)).status, 503);
  for (let i = 0; i < 4; i++) t.is((await get(`${url}/livez`)).status, 200);
  t.is((await get(`${url}/nothing-here`)).status, 404);
  const text = await metrics.render();
  t.is(sample(text, 'kubeproxy_proxy_healthz_total', { code: '200' }), 3);
  t.is(sample(text, 'kubeproxy_proxy_healthz_total', { code: '503' }), 2);
  t.is(sample(text, 'kubeproxy_proxy_livez_total', { code: '200' }), 4);
  t.is(sample(text, 'kubeproxy_proxy_livez_total', { code: '503' }), undefined);
});

test('service and endpoint changes are counted; a service change held back by the rate limit is pending', async (t) => {
  // Two syncs per minute at most (kube-proxy's burst of 2), no periodic sync within the test.
  const { agent, write } = await startProxy(t, { 's1.yaml': serviceYaml('s1', ip(3), [{ name: 'http', port: 8080 }]) }, { config: { minSyncPeriodMs: 60_000, syncPeriodMs: 60_000 } });
  const metrics = metricsFor(t, agent);
  let text = await metrics.render();
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_total'), 1);
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 0);
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'), 0);

  await write('s2.yaml', serviceYaml('s2', ip(4), [{ name: 'http', port: 8080 }]));
  await waitFor('the second sync to apply s2', () => agent.counts().services === 2);
  text = await metrics.render();
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_total'), 2);
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 0);

  // The burst is used: this one waits for the next minute.
  await write('s3.yaml', serviceYaml('s3', ip(5), [{ name: 'http', port: 8080 }]));
  text = await waitFor('s3 to be seen', async () => {
    const m = await metrics.render();
    return sample(m, 'kubeproxy_sync_proxy_rules_service_changes_total') === 3 ? m : undefined;
  });
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 1);
  t.is(agent.counts().services, 2);
  // Queued after the last sync finished: the gap kube-proxy's alerts look for.
  const queued = sample(text, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', { ip_family: 'IPv4' }) ?? 0;
  const last = sample(text, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', { ip_family: 'IPv4' }) ?? Infinity;
  t.true(queued > last, `queued ${queued}, last sync ${last}`);

  // Endpoint changes reach the balancer at once: counted, never pending.
  await write('s1-slice.yaml', sliceYaml('s1', 's1-a', [{ name: 'http', port: 9000 }], [{ ip: ip(11) }]));
  await waitFor('the first slice change', async () => sample(await metrics.render(), 'kubeproxy_sync_proxy_rules_endpoint_changes_total') === 1);
  await write('s1-slice.yaml', sliceYaml('s1', 's1-a', [{ name: 'http', port: 9000 }], [{ ip: ip(11) }, { ip: ip(12) }]));
  text = await waitFor('both slice changes', async () => {
    const m = await metrics.render();
    return sample(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_total') === 2 ? m : undefined;
  });
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 0);
  t.deepEqual(agent.status().find((s) => s.spn === 'default/s1:http')?.endpoints.length, 2);
});

test('no_local_endpoints counts Local policies whose endpoints are all on other nodes, per traffic policy', async (t) => {
  const eps = (svc: string, port: number, nodes: string[]): string =>
    sliceYaml(
      svc,
      `${svc}-1`,
      [{ name: 'http', port }],
      nodes.map((nodeName, i) => ({ ip: ip(20 + i), nodeName })),
    );
  const { agent } = await startProxy(
    t,
    {
      // internalTrafficPolicy: Local, endpoints elsewhere only: internal.
      'il.yaml': serviceYaml('il', ip(6), [{ name: 'http', port: 8080 }], { internalTrafficPolicy: 'Local' }),
      'il-slice.yaml': eps('il', 9000, ['node-b', 'node-c']),
      // externalTrafficPolicy: Local with an external IP, endpoints elsewhere only: external (its cluster IP has them).
      'el.yaml': serviceYaml('el', ip(7), [{ name: 'http', port: 8080 }], { externalTrafficPolicy: 'Local', externalIPs: [ip(8)] }),
      'el-slice.yaml': eps('el', 9000, ['node-b']),
      // Local with an endpoint here: not counted.
      'ok.yaml': serviceYaml('ok', ip(9), [{ name: 'http', port: 8080 }], { internalTrafficPolicy: 'Local' }),
      'ok-slice.yaml': eps('ok', 9000, ['node-a', 'node-b']),
      // Local with no endpoints anywhere: not counted (it is rejected, not a Local-policy problem).
      'none.yaml': serviceYaml('none', ip(14), [{ name: 'http', port: 8080 }], { internalTrafficPolicy: 'Local' }),
    },
    { config: { nodeName: 'node-a' } },
  );
  const text = await metricsFor(t, agent).render();
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', { ip_family: 'IPv4', traffic_policy: 'internal' }), 1);
  t.is(sample(text, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', { ip_family: 'IPv4', traffic_policy: 'external' }), 1);
});

/** An nftables backend whose `nft -f` fails. */
class FailingNftables implements RuleBackend {
  readonly mode = 'nftables' as const;
  syncs = 0;
  async start(): Promise<void> {}
  async sync(): Promise<void> {
    this.syncs++;
    throw new RulesError('nft failed: exit status 1', { command: ['nft', '-f', '-'], stderr: 'Error: Could not process rule' });
  }
  render(): string {
    return '';
  }
  async close(): Promise<void> {}
}

for (const [mode, makeRules, counter, other] of [
  ['iptables', () => new FailingRules(), 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total'],
  ['nftables', () => new FailingNftables(), 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total', 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total'],
] as const) {
  test.serial(`${mode}: rules that fail to apply count in kube-proxy's ${mode} failure counter`, async (t) => {
    const rules = makeRules();
    const { agent } = await startProxy(t, { 'r.yaml': serviceYaml('r', ip(mode === 'iptables' ? 15 : 16), [{ name: 'http', port: 8080 }]) }, { rules });
    const metrics = metricsFor(t, agent);
    const before = rules.syncs;
    await waitFor('two more failed syncs', () => rules.syncs >= before + 2);
    const text = await metrics.render();
    const failures = sample(text, counter, { ip_family: 'IPv4' }) ?? 0;
    t.true(failures >= 2, `${counter} ${failures}`);
    // The same failures as the project's own counter sees.
    t.is(failures, sample(text, 'kube_userspace_proxy_rule_apply_errors_total') ?? -1);
    t.regex(text, new RegExp(`^# TYPE ${counter} counter$`, 'm'));
    t.false(text.includes(other));
  });
}

// Through the Kubernetes API: the real client-node informers against the test API server.

const api = loopbackBlock(138);

function kubeService(name: string, clusterIP: string, port: number): KubeObject {
  return {
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ports: [{ name: 'p', port, protocol: 'TCP', targetPort: port }], sessionAffinity: 'None' },
    status: { loadBalancer: {} },
  };
}

function kubeSlice(name: string, svc: string, backends: Backend[], triggerTime?: string): KubeObject {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': svc }, ...(triggerTime ? { annotations: { [TRIGGER]: triggerTime } } : {}) },
    addressType: 'IPv4',
    endpoints: backends.map((b) => ({ addresses: [b.host], conditions: { ready: true } })),
    ports: [{ name: 'p', port: backends[0]!.port, protocol: 'TCP' }],
  };
}

async function startWithApi(t: ExecutionContext, seed: (server: TestApiServer) => void, useEndpoints = false): Promise<{ server: TestApiServer; agent: Agent; metrics: Metrics }> {
  const server = await TestApiServer.start();
  t.teardown(() => server.close());
  seed(server);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(server.kubeconfig());
  const source = new KubeSource({ kubeConfig, backoff: { initialMs: 50, maxMs: 400 }, allowLoopbackEndpoints: true, useEndpoints });
  const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 500, minSyncPeriodMs: 0 }, source });
  t.teardown(() => agent.destroy());
  const metrics = metricsFor(t, agent);
  await agent.start();
  return { server, agent, metrics };
}

const count = async (metrics: Metrics): Promise<number> => sample(await metrics.render(), 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }) ?? 0;

test("network programming latency: from the slice's trigger time to the change in force, through the API", async (t) => {
  // Same port on both backends: the slice's port stays, only the endpoint changes.
  const a = await backendFor(t, tcpName('a', api(10)));
  const b = await backendFor(t, tcpName('b', api(11), a.port!));
  // Objects of the initial list carry old trigger times: not a change this agent programmed.
  const { server, metrics } = await startWithApi(t, (s) => {
    s.create('services', kubeService('web', api(1), 7000));
    s.create('endpointslices', kubeSlice('web-1', 'web', [a], '2020-01-01T00:00:00Z'));
  });
  await waitFor('a to serve', async () => (await tcpRequest(api(1), 7000).catch(() => Buffer.alloc(0))).toString() === 'a');
  t.is(await count(metrics), 0);

  const triggered = Date.now();
  server.update('endpointslices', kubeSlice('web-1', 'web', [b], new Date(triggered).toISOString()));
  await waitFor('b to serve', async () => (await tcpRequest(api(1), 7000).catch(() => Buffer.alloc(0))).toString() === 'b');
  const bound = (Date.now() - triggered) / 1000;
  const text = await metrics.render();
  t.is(sample(text, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }), 1);
  const seconds = sample(text, 'kubeproxy_network_programming_duration_seconds_sum', { ip_family: 'IPv4' }) ?? -1;
  // Observed when the new endpoint took over, so no later than it was seen serving.
  t.true(seconds >= 0 && seconds <= bound, `observed ${seconds}s, bound ${bound}s`);

  // An update that changes only the annotation, and a deletion, are not timed; the next real change is.
  server.update('endpointslices', kubeSlice('web-1', 'web', [b], new Date().toISOString()));
  server.update('endpointslices', kubeSlice('web-1', 'web', [a], new Date().toISOString()));
  await waitFor('a to serve again', async () => (await tcpRequest(api(1), 7000).catch(() => Buffer.alloc(0))).toString() === 'a');
  server.delete('endpointslices', 'default', 'web-1');
  server.create('endpointslices', kubeSlice('web-2', 'web', [b], new Date().toISOString()));
  await waitFor('the new slice to serve', async () => (await tcpRequest(api(1), 7000).catch(() => Buffer.alloc(0))).toString() === 'b');
  t.is(await count(metrics), 3);
});

test('network programming latency: a slice of a service not yet applied is timed at the sync that applies it', async (t) => {
  const a = await backendFor(t, tcpName('a', api(20)));
  const { server, metrics } = await startWithApi(t, () => {});
  const triggered = Date.now();
  server.create('endpointslices', kubeSlice('late-1', 'late', [a], new Date(triggered).toISOString()));
  server.create('services', kubeService('late', api(2), 7001));
  await waitFor('the service to serve', async () => (await tcpRequest(api(2), 7001).catch(() => Buffer.alloc(0))).toString() === 'a');
  const bound = (Date.now() - triggered) / 1000;
  await waitFor('one observation', async () => (await count(metrics)) === 1);
  const seconds = sample(await metrics.render(), 'kubeproxy_network_programming_duration_seconds_sum', { ip_family: 'IPv4' }) ?? -1;
  t.true(seconds >= 0 && seconds <= bound, `observed ${seconds}s, bound ${bound}s`);
});

test('network programming latency: v1 Endpoints carry the trigger time too', async (t) => {
  const a = await backendFor(t, tcpName('a', api(30)));
  const b = await backendFor(t, tcpName('b', api(31), a.port));
  const endpoints = (target: Backend, triggerTime: string): KubeObject => ({
    metadata: { namespace: 'default', name: 'old', annotations: { [TRIGGER]: triggerTime } },
    subsets: [{ addresses: [{ ip: target.host }], ports: [{ name: 'p', port: target.port, protocol: 'TCP' }] }],
  });
  const { server, metrics } = await startWithApi(
    t,
    (s) => {
      s.create('services', kubeService('old', api(3), 7002));
      s.create('endpoints', endpoints(a, '2020-01-01T00:00:00Z'));
    },
    true,
  );
  await waitFor('a to serve', async () => (await tcpRequest(api(3), 7002).catch(() => Buffer.alloc(0))).toString() === 'a');
  const triggered = Date.now();
  server.update('endpoints', endpoints(b, new Date(triggered).toISOString()));
  await waitFor('b to serve', async () => (await tcpRequest(api(3), 7002).catch(() => Buffer.alloc(0))).toString() === 'b');
  const bound = (Date.now() - triggered) / 1000;
  const text = await metrics.render();
  t.is(sample(text, 'kubeproxy_network_programming_duration_seconds_count', { ip_family: 'IPv4' }), 1);
  const seconds = sample(text, 'kubeproxy_network_programming_duration_seconds_sum', { ip_family: 'IPv4' }) ?? -1;
  t.true(seconds >= 0 && seconds <= bound, `observed ${seconds}s, bound ${bound}s`);
});
