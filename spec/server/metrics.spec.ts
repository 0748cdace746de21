import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import test from 'ava';
import { RoundRobinBalancer } from '../../lib/balancer/round-robin-balancer.js';
import { Metrics } from '../../lib/server/metrics.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { backendFor, tcpEcho, tcpRequest, udpEcho } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';
import { FailingRules, get, sample, startMetricsServer, startProxy, withHealth } from './fixture.js';

const ip = loopbackBlock(70);
const P = 'kube_userspace_proxy_';

async function scrape(url: string): Promise<string> {
  const res = await get(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.body;
}

test('3 TCP connections of N bytes each: exact connection and byte counts, and no active connection left', async (t) => {
  const echo = await backendFor(t, tcpEcho(ip(10)));
  const { agent } = await startProxy(t, {
    'web.yaml': serviceYaml('web', ip(1), [{ name: 'http', port: 8080 }]),
    'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: echo.port }], [{ ip: ip(10) }]),
  });
  const { url } = await startMetricsServer(t, agent);
  const N = 10_000;
  for (let i = 0; i < 3; i++) {
    const payload = randomBytes(N);
    t.deepEqual(await tcpRequest(ip(1), 8080, payload), payload);
  }
  const labels = { namespace: 'default', service: 'web', port: 'http', protocol: 'TCP' };
  const text = await waitFor('the connections to close', async () => {
    const m = await scrape(url);
    return sample(m, `${P}service_port_connections_active`, labels) === 0 ? m : undefined;
  });
  t.is(sample(text, `${P}connections_total`, labels), 3);
  t.is(sample(text, `${P}bytes_total`, { ...labels, direction: 'in' }), 3 * N);
  t.is(sample(text, `${P}bytes_total`, { ...labels, direction: 'out' }), 3 * N);
  t.is(sample(text, `${P}dial_failures_total`, labels), 0);
  t.is(sample(text, `${P}dial_retries_total`, labels), 0);
  t.is(sample(text, `${P}no_endpoint_rejections_total`, labels), 0);
  // UDP-only series are not emitted for a TCP port.
  t.is(sample(text, `${P}udp_sessions`, labels), undefined);
  t.is(sample(text, `${P}services`), 1);
  t.is(sample(text, `${P}service_ports`), 1);
  t.is(sample(text, `${P}endpoints`), 1);
  // The per-endpoint counters behind the status view.
  const stats = agent.status().find((s) => s.spn === 'default/web:http')?.stats;
  t.deepEqual(Object.fromEntries(stats?.endpoints ?? []), { [`${ip(10)}:${echo.port}`]: { active: 0, total: 3, dialFailures: 0 } });
});

test('an open connection is active in the gauge and in its endpoint until it closes', async (t) => {
  const echo = await backendFor(t, tcpEcho(ip(14)));
  const { agent } = await startProxy(t, {
    'hold.yaml': serviceYaml('hold', ip(5), [{ name: 'tcp', port: 8080 }]),
    'hold-slice.yaml': sliceYaml('hold', 'hold-1', [{ name: 'tcp', port: echo.port }], [{ ip: ip(14) }]),
  });
  const { url } = await startMetricsServer(t, agent);
  const labels = { namespace: 'default', service: 'hold', port: 'tcp', protocol: 'TCP' };
  const client = net.connect({ host: ip(5), port: 8080 });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  await waitFor('the connection to be proxied', async () => sample(await scrape(url), `${P}service_port_connections_active`, labels) === 1);
  const key = `${ip(14)}:${echo.port}`;
  t.deepEqual(agent.status()[0]?.stats?.endpoints.get(key), { active: 1, total: 1, dialFailures: 0 });
  client.end();
  await waitFor('the connection to close', async () => sample(await scrape(url), `${P}service_port_connections_active`, labels) === 0);
  t.deepEqual(agent.status()[0]?.stats?.endpoints.get(key), { active: 0, total: 1, dialFailures: 0 });
});

test('UDP: two clients make two sessions; exact bytes both ways', async (t) => {
  const echo = await backendFor(t, udpEcho(ip(11)));
  const { agent } = await startProxy(t, {
    'dns.yaml': serviceYaml('dns', ip(2), [{ name: 'dns', port: 5353, protocol: 'UDP' }]),
    'dns-slice.yaml': sliceYaml('dns', 'dns-1', [{ name: 'dns', port: echo.port, protocol: 'UDP' }], [{ ip: ip(11) }]),
  });
  const { url } = await startMetricsServer(t, agent);
  const M = 1200;
  for (let i = 0; i < 2; i++) {
    const sock = dgram.createSocket('udp4');
    t.teardown(() => sock.close());
    const reply = new Promise<Buffer>((resolve) => sock.once('message', resolve));
    const payload = randomBytes(M);
    sock.send(payload, 5353, ip(2));
    t.deepEqual(await reply, payload);
  }
  const labels = { namespace: 'default', service: 'dns', port: 'dns', protocol: 'UDP' };
  const text = await scrape(url);
  t.is(sample(text, `${P}connections_total`, labels), 2);
  t.is(sample(text, `${P}udp_sessions`, labels), 2);
  t.is(sample(text, `${P}service_port_connections_active`, labels), 2);
  t.is(sample(text, `${P}udp_evictions_total`, labels), 0);
  t.is(sample(text, `${P}bytes_total`, { ...labels, direction: 'in' }), 2 * M);
  t.is(sample(text, `${P}bytes_total`, { ...labels, direction: 'out' }), 2 * M);
  t.deepEqual(agent.status()[0]?.stats?.endpoints.get(`${ip(11)}:${echo.port}`), { active: 2, total: 2, dialFailures: 0 });
});

test('a service port without endpoints is refused by the kernel in none mode: no listener, so no rejection reaches the counters', async (t) => {
  const { agent } = await startProxy(t, { 'empty.yaml': serviceYaml('empty', ip(3), [{ name: 'http', port: 8080 }]) });
  const { url } = await startMetricsServer(t, agent);
  const refused = await t.throwsAsync(tcpRequest(ip(3), 8080));
  t.is((refused as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  const text = await scrape(url);
  const labels = { namespace: 'default', service: 'empty', port: 'http', protocol: 'TCP' };
  t.is(sample(text, `${P}no_endpoint_rejections_total`, labels), undefined, 'no listener, no per-port counters');
  t.is(sample(text, `${P}endpoints`), 0);
});

test('a refused endpoint: one dial failure and one retry, counted on the service port and on that endpoint', async (t) => {
  const live = await backendFor(t, tcpEcho(ip(13)));
  // Nothing listens on ip(12) at that port; the endpoints are sorted by key and the balancer's
  // shuffle is the identity, so the dead one is tried first.
  const { agent } = await startProxy(
    t,
    {
      'flaky.yaml': serviceYaml('flaky', ip(4), [{ name: 'http', port: 8080 }]),
      'flaky-slice.yaml': sliceYaml('flaky', 'flaky-1', [{ name: 'http', port: live.port }], [{ ip: ip(12) }, { ip: ip(13) }]),
    },
    { balancer: new RoundRobinBalancer({ random: () => 0.999_999 }) },
  );
  const { url } = await startMetricsServer(t, agent);
  t.deepEqual(await tcpRequest(ip(4), 8080, 'hello'), Buffer.from('hello'));
  const labels = { namespace: 'default', service: 'flaky', port: 'http', protocol: 'TCP' };
  const text = await scrape(url);
  t.is(sample(text, `${P}dial_failures_total`, labels), 1);
  t.is(sample(text, `${P}dial_retries_total`, labels), 1);
  t.is(sample(text, `${P}dial_give_ups_total`, labels), 0);
  t.is(sample(text, `${P}connections_total`, labels), 1);
  const endpoints = agent.status()[0]?.stats?.endpoints;
  t.is(endpoints?.get(`${ip(12)}:${live.port}`)?.dialFailures, 1);
  t.is(endpoints?.get(`${ip(12)}:${live.port}`)?.total, 0);
  t.deepEqual(endpoints?.get(`${ip(13)}:${live.port}`), { active: 0, total: 1, dialFailures: 0 });
});

test('syncs are timed in a histogram; the last sync time, informer restarts and process metrics are exported', async (t) => {
  const { agent } = await startProxy(
    t,
    { 'a.yaml': serviceYaml('a', ip(6), [{ name: 'http', port: 8080 }]) },
    { source: (m) => withHealth(m, () => ({ connected: true, lastSuccessMs: Date.now(), informerRestarts: 4 })) },
  );
  const before = Date.now() / 1000;
  // Subscribed after the first sync: the periodic syncs (every 200 ms here) are observed.
  const { url } = await startMetricsServer(t, agent);
  const text = await waitFor('a sync to be observed', async () => {
    const m = await scrape(url);
    return (sample(m, `${P}sync_duration_seconds_count`) ?? 0) >= 1 ? m : undefined;
  });
  t.true((sample(text, `${P}sync_duration_seconds_bucket`, { le: '+Inf' }) ?? 0) >= 1);
  t.true((sample(text, `${P}sync_duration_seconds_sum`) ?? -1) >= 0);
  t.true((sample(text, `${P}last_sync_timestamp_seconds`) ?? 0) >= before - 1);
  t.is(sample(text, `${P}informer_restarts_total`), 4);
  t.is(sample(text, `${P}rule_apply_errors_total`), 0);
  t.regex(text, /^# TYPE kube_userspace_proxy_connections_total counter$/m);
  t.regex(text, /^# TYPE kube_userspace_proxy_service_port_connections_active gauge$/m);
  t.regex(text, /^# TYPE kube_userspace_proxy_sync_duration_seconds histogram$/m);
  t.not(sample(text, 'process_cpu_user_seconds_total'), undefined);
  t.not(sample(text, 'nodejs_heap_size_used_bytes'), undefined);
});

test.serial('rules that fail to apply are counted, once per failed sync', async (t) => {
  const rules = new FailingRules();
  const { agent } = await startProxy(t, { 'r.yaml': serviceYaml('r', ip(7), [{ name: 'http', port: 8080 }]) }, { rules });
  const metrics = new Metrics({ agent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  const syncsBefore = rules.syncs;
  await waitFor('two more failed syncs', () => rules.syncs >= syncsBefore + 2);
  const text = await metrics.render();
  const errors = sample(text, `${P}rule_apply_errors_total`) ?? 0;
  t.true(errors >= 2 && errors <= rules.syncs - syncsBefore + 1, `errors ${errors}, syncs ${rules.syncs - syncsBefore}`);
  // After close() the channels are no longer followed.
  metrics.close();
  metrics.close();
  const frozen = sample(await metrics.render(), `${P}rule_apply_errors_total`);
  await waitFor('another failed sync', () => rules.syncs >= syncsBefore + 4);
  t.is(sample(await metrics.render(), `${P}rule_apply_errors_total`), frozen);
});

test('labels are the service port (namespace, service, port name) and protocol only: series do not grow with clients or endpoints', async (t) => {
  const echo = await backendFor(t, tcpEcho(ip(15)));
  const { agent } = await startProxy(t, {
    'many.yaml': serviceYaml('many', ip(8), [{ name: 'http', port: 8080 }]),
    'many-slice.yaml': sliceYaml('many', 'many-1', [{ name: 'http', port: echo.port }], [{ ip: ip(15) }]),
  });
  const metrics = new Metrics({ agent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  await Promise.all(Array.from({ length: 10 }, () => tcpRequest(ip(8), 8080, 'x')));
  const text = await metrics.render();
  const ours = text.split('\n').filter((l) => l.startsWith(P) && !l.startsWith(`${P}sync_duration_seconds`));
  for (const line of ours) {
    const labels = /\{(.*)\}/.exec(line)?.[1] ?? '';
    const names = labels === '' ? [] : labels.split(/,(?=[a-z_]+=")/).map((l) => l.slice(0, l.indexOf('=')));
    t.true(
      names.every((n) => ['namespace', 'service', 'port', 'protocol', 'direction', 'scheduler'].includes(n)),
      line,
    );
  }
  t.is(ours.filter((l) => l.startsWith(`${P}connections_total{`)).length, 1);
});
