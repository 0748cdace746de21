import os from 'node:os';
import test from 'ava';
import { RoundRobinBalancer } from '../../lib/balancer/round-robin-balancer.js';
import { ClosedError, InvalidConfigError } from '../../lib/errors.js';
import type { AgentView } from '../../lib/server/agent-view.js';
import { Metrics } from '../../lib/server/metrics.js';
import { MetricsServer } from '../../lib/server/metrics-server.js';
import type { StatusDocument } from '../../lib/server/status-document.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRequest } from '../helpers/backends.js';
import { FailingRules, get, sample, startMetricsServer, startProxy } from './fixture.js';

const ip = loopbackBlock(72);

test('/proxyMode answers userspace as text/plain, like kube-proxy', async (t) => {
  const { agent } = await startProxy(t, { 'a.yaml': serviceYaml('a', ip(1), [{ name: 'http', port: 8080 }]) });
  const { url } = await startMetricsServer(t, agent, false);
  const res = await get(`${url}/proxyMode`);
  t.is(res.status, 200);
  t.is(res.body, 'userspace');
  t.is(res.headers['content-type'], 'text/plain; charset=utf-8');
  t.is(res.headers['x-content-type-options'], 'nosniff');
});

test('/metrics is Prometheus text 0.0.4; /healthz answers as on the health server', async (t) => {
  const { agent } = await startProxy(t, { 'b.yaml': serviceYaml('b', ip(2), [{ name: 'http', port: 8080 }]) });
  const { url } = await startMetricsServer(t, agent, false);
  const metrics = await get(`${url}/metrics`);
  t.is(metrics.status, 200);
  t.is(metrics.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.is(sample(metrics.body, 'kube_userspace_proxy_services'), 1);
  t.is(sample(metrics.body, 'process_cpu_user_seconds_total'), undefined, 'default metrics were turned off');
  const healthz = await get(`${url}/healthz`);
  t.is(healthz.status, 200);
  t.is(healthz.headers['content-type'], 'application/json');
  t.deepEqual(Object.keys(JSON.parse(healthz.body) as object).sort(), ['currentTime', 'lastUpdated', 'nodeEligible']);
  t.is((await get(`${url}/nope`)).status, 404);
  t.is((await get(`${url}/metrics`, 'POST')).status, 405);
});

test('/status: every service port with its portals, scheduler, affinity, counters and endpoints', async (t) => {
  const echo = await tcpEcho(ip(10));
  t.teardown(() => echo.close());
  const { agent } = await startProxy(
    t,
    {
      'web.yaml': serviceYaml('web', ip(3), [{ name: 'http', port: 8080 }], { affinityTimeout: 600 }),
      'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: echo.port }], [{ ip: ip(10) }, { ip: ip(11) }]),
      'dns.yaml': serviceYaml('dns', ip(4), [{ name: 'dns', port: 5353, protocol: 'UDP' }], { namespace: 'kube-system' }),
    },
    { balancer: new RoundRobinBalancer({ random: () => 0.999_999 }) },
  );
  const { url } = await startMetricsServer(t, agent, false);
  await tcpRequest(ip(3), 8080, 'abc');
  const res = await get(`${url}/status`);
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'application/json');
  const doc = JSON.parse(res.body) as StatusDocument;
  t.is(doc.redirectMode, 'none');
  t.true(doc.healthy);
  t.deepEqual(doc.reasons, []);
  t.deepEqual(doc.counts, { services: 2, servicePorts: 2, endpoints: 2 });
  t.is(doc.source, null);
  t.deepEqual(
    doc.servicePorts.map((sp) => sp.servicePort),
    ['default/web:http', 'kube-system/dns:dns'],
  );
  const [web, dns] = doc.servicePorts;
  t.like(web, {
    protocol: 'TCP',
    portals: [`${ip(3)}:8080`],
    listening: [`${ip(3)}:8080`],
    proxyPort: 0,
    nodePort: 0,
    scheduler: 'rr',
    affinity: { type: 'ClientIP', timeoutSeconds: 600 },
    error: null,
    stats: { active: 0, total: 1, bytesIn: 3, bytesOut: 3, dialFailures: 0, dialRetries: 0, dialGiveUps: 0, noEndpointRejections: 0, udpEvictions: 0 },
  });
  // The balancer's order is the sorted one: the connection went to ip(10); nothing listens on ip(11).
  t.deepEqual(
    web?.endpoints.map((e) => e.endpoint),
    [`${ip(10)}:${echo.port}`, `${ip(11)}:${echo.port}`],
  );
  t.is(web?.endpoints[0]?.total, 1);
  t.is(web?.endpoints[1]?.total, 0);
  t.true(web?.endpoints.every((e) => e.inRotation && e.active === 0));
  // No endpoints: in none mode the port is not listened on (the kernel refuses), so it has no counters.
  t.like(dns, { protocol: 'UDP', affinity: { type: 'None' }, endpoints: [], listening: [], error: null, stats: null });
});

test('/status of a rules mode agent: proxy ports, and the rule failure as the reason', async (t) => {
  const { agent } = await startProxy(t, { 'r.yaml': serviceYaml('r', '10.96.0.10', [{ name: 'http', port: 80 }]) }, { rules: new FailingRules() });
  const { url } = await startMetricsServer(t, agent, false);
  const doc = JSON.parse((await get(`${url}/status`)).body) as StatusDocument;
  t.is(doc.redirectMode, 'iptables');
  t.false(doc.healthy);
  t.regex(doc.reasons.join(' '), /rules failed to apply/);
  const [r] = doc.servicePorts;
  t.deepEqual(r?.portals, ['10.96.0.10:80']);
  t.true((r?.proxyPort ?? 0) > 0);
  t.deepEqual(r?.listening, [`127.0.0.1:${r?.proxyPort}`]);
});

const idleAgent: AgentView = {
  status: () => [],
  health: () => ({ healthy: false, reasons: ['no sync yet'], lastUpdatedMs: undefined, draining: false }),
  counts: () => ({ services: 0, servicePorts: 0, endpoints: 0 }),
  redirectMode: 'none',
  sourceHealth: () => undefined,
};

test('lifecycle: close() is idempotent and start() after it rejects; a closing server answers nothing new', async (t) => {
  const metrics = new Metrics({ agent: idleAgent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  const server = new MetricsServer({ address: '127.0.0.1:0', agent: idleAgent, metrics });
  await server.start();
  t.is(server.start(), server.start(), 'start() twice is one start');
  const url = server.url()!;
  t.is((await get(`${url}/healthz`)).status, 503);
  await Promise.all([server.close(), server.close()]);
  await t.throwsAsync(server.start(), { instanceOf: ClosedError });
  await t.throwsAsync(get(`${url}/proxyMode`), { code: 'ECONNREFUSED' });
  server.destroy();
});

test('options are validated up front with every problem', (t) => {
  const metrics = new Metrics({ agent: idleAgent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  const err = t.throws(() => new MetricsServer({ address: '127.0.0.1:0', agent: {} as AgentView, metrics: {} as Metrics }), { instanceOf: InvalidConfigError });
  t.deepEqual(err?.problems, ['metrics server: agent must be an Agent', 'metrics server: metrics must be a Metrics']);
  t.throws(() => new MetricsServer({ address: '::1:10249', agent: idleAgent, metrics }), { message: /metrics bind address: an IPv6 address must be written in brackets/ });
});

const hasIPv6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === '::1'));

// Skipped only outside CI on a machine without IPv6 loopback; in CI it must run (and fails there without ::1).
(hasIPv6Loopback || process.env['CI'] === 'true' ? test : test.skip)('serves on an IPv6 address: [::1]:0', async (t) => {
  const metrics = new Metrics({ agent: idleAgent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  const server = new MetricsServer({ address: '[::1]:0', agent: idleAgent, metrics });
  t.teardown(() => server.close());
  await server.start();
  t.regex(server.url()!, /^http:\/\/\[::1\]:\d+$/);
  t.is((await get(`${server.url()!}/proxyMode`)).body, 'userspace');
});
