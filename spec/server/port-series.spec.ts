import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import test from 'ava';
import type { PortCounters } from '../../lib/agent/agent.js';
import { ProxyStats } from '../../lib/proxy/proxy-stats.js';
import { Metrics } from '../../lib/server/metrics.js';
import { PortSeries } from '../../lib/server/port-series.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { backendFor, tcpEcho, tcpRequest, udpEcho } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';
import { startProxy } from './fixture.js';
import { promClientPortSeries } from './prom-client-port-series.js';

const ip = loopbackBlock(74);

/** Every sample of a text, `name{labels}` → value, for a readable difference before the exact comparison. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), line.slice(cut + 1));
  }
  return out;
}

async function rendered(series: PortSeries, ports: readonly PortCounters[]): Promise<string> {
  return `${(await series.render(ports)).join('\n\n')}\n`;
}

function stats(seed: number, fields: Partial<ProxyStats> = {}): ProxyStats {
  const s = new ProxyStats();
  s.active = seed % 3;
  s.total = seed * 7;
  s.bytesIn = seed * 1000;
  s.bytesOut = seed * 2000 + 1;
  s.dialFailures = seed % 5;
  s.dialRetries = seed % 4;
  s.dialGiveUps = seed % 2;
  s.noEndpointRejections = seed % 6;
  s.udpEvictions = seed % 7;
  s.localResourceErrors = seed % 8;
  s.tcpIdleTimeouts = seed % 9;
  return Object.assign(s, fields);
}

function port(spn: string, protocol: string, st: ProxyStats | undefined, scheduler = 'round-robin'): PortCounters {
  return { spn, protocol, scheduler, stats: st } as PortCounters;
}

test('the per-port text equals what prom-client rendered, sample for sample and byte for byte', async (t) => {
  const ports = [
    port('default/web:http', 'TCP', stats(1)),
    port('default/dns:dns', 'UDP', stats(2)),
    // A port split by scope: both listeners have the same labels, so their series are sums.
    port('default/split:http (internal)', 'TCP', stats(3)),
    port('default/other:https', 'TCP', stats(4), 'least-connections'),
    port('default/split:http', 'TCP', stats(5)),
    // Split by family, the first listener without a socket (it failed to open): only the second counts.
    port('kube-system/dual:p (IPv6)', 'UDP', undefined),
    port('default/failed:p', 'TCP', undefined),
    port('kube-system/dual:p', 'UDP', stats(6)),
    port('default/unnamed:', 'TCP', stats(7)),
    port('not-a-key', 'TCP', stats(8)),
    port('odd/na"me\\x:p\nq', 'TCP', stats(9), 'we"ird'),
    port('default/big:p', 'TCP', stats(10, { bytesIn: 2 ** 53, bytesOut: 0.5 })),
  ];
  const series = new PortSeries();
  const mine = await rendered(series, ports);
  const reference = await promClientPortSeries(ports);
  t.deepEqual([...samples(mine)], [...samples(reference)]);
  t.is(mine, reference);
  t.true(mine.includes('kube_userspace_proxy_connections_total{namespace="default",service="split",port="http",protocol="TCP"} 56\n'));
});

test('with no port, every per-port metric still has its HELP and TYPE, as prom-client wrote them', async (t) => {
  const mine = await rendered(new PortSeries(), []);
  t.is(mine, await promClientPortSeries([]));
  t.is(mine.match(/^# TYPE /gm)?.length, 12);
});

test('thousands of ports across several slices, and the ports changing between scrapes, render as prom-client did', async (t) => {
  const series = new PortSeries();
  const many = Array.from({ length: 4500 }, (_, i) => port(`ns-${i % 7}/svc-${i}:p`, i % 3 === 0 ? 'UDP' : 'TCP', stats(i)));
  // One port split across slices: its first listener early, its second in the last slice.
  many.splice(10, 0, port('ns-4/svc-4400:p (internal)', 'TCP', stats(11)));
  let mine = await rendered(series, many);
  t.is(mine, await promClientPortSeries(many));
  // A port gone, a port whose protocol changed under the same key, new ports: the label cache follows.
  const next = [...many.slice(1, 3000), port('ns-1/svc-1:p', 'UDP', stats(1)), port('ns-9/new:q', 'TCP', stats(12))];
  mine = await rendered(series, next);
  t.is(mine, await promClientPortSeries(next));
});

test('counters and schedulers that change between scrapes show their new values, and only those', async (t) => {
  const series = new PortSeries();
  const ports = Array.from({ length: 3000 }, (_, i) => port(`ns/svc-${i}:p`, i % 2 === 0 ? 'UDP' : 'TCP', stats(i)));
  t.is(await rendered(series, ports), await promClientPortSeries(ports));
  // The same listeners (same stats objects), some counters moved, one scheduler changed, one value not a number.
  ports[5]!.stats!.total += 1;
  ports[2999]!.stats!.bytesOut += 17;
  ports[2000]!.stats!.active = 0;
  ports[1]!.stats!.dialFailures = Number.NaN;
  const next = ports.map((p, i) => (i === 7 ? port(p.spn, p.protocol, p.stats, 'least-connections') : p));
  const mine = await rendered(series, next);
  t.is(mine, await promClientPortSeries(next));
  t.true(mine.includes('kube_userspace_proxy_connections_total{namespace="ns",service="svc-5",port="p",protocol="TCP"} 36\n'));
  t.true(mine.includes('scheduler="least-connections"} 1\n'));
  // Back to a value shown two scrapes ago.
  ports[5]!.stats!.total -= 1;
  t.is(await rendered(series, next), await promClientPortSeries(next));
});

test('a scrape of thousands of ports lets other callbacks run before it finishes', async (t) => {
  const ports = Array.from({ length: 5000 }, (_, i) => port(`ns/svc-${i}:p`, 'TCP', stats(i)));
  let ranBetween = false;
  const rendering = new PortSeries().render(ports).then((blocks) => {
    t.true(ranBetween, 'the rendering yielded to the event loop');
    return blocks;
  });
  setImmediate(() => (ranBetween = true));
  t.is((await rendering).length, 12);
});

test("a live agent's /metrics holds, between its own totals and kube-proxy's metrics, exactly the per-port text prom-client rendered", async (t) => {
  const echo = await backendFor(t, tcpEcho(ip(10)));
  const udp = await backendFor(t, udpEcho(ip(11)));
  const { agent } = await startProxy(t, {
    'web.yaml': serviceYaml('web', ip(1), [{ name: 'http', port: 8080 }]),
    'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: echo.port }], [{ ip: ip(10) }]),
    'dns.yaml': serviceYaml('dns', ip(2), [{ name: 'dns', port: 5353, protocol: 'UDP' }]),
    'dns-slice.yaml': sliceYaml('dns', 'dns-1', [{ name: 'dns', port: udp.port, protocol: 'UDP' }], [{ ip: ip(11) }]),
    // externalTrafficPolicy: Local with an external IP: internal and external listeners of one port.
    'el.yaml': serviceYaml('el', ip(3), [{ name: 'http', port: 8080 }], { externalTrafficPolicy: 'Local', externalIPs: [ip(4)] }),
    'el-slice.yaml': sliceYaml('el', 'el-1', [{ name: 'http', port: echo.port }], [{ ip: ip(10) }]),
  });
  const payload = randomBytes(3000);
  t.deepEqual(await tcpRequest(ip(1), 8080, payload), payload);
  t.deepEqual(await tcpRequest(ip(3), 8080, payload), payload);
  const client = dgram.createSocket('udp4');
  t.teardown(() => client.close());
  const answer = new Promise<Buffer>((resolve) => client.once('message', resolve));
  client.send(Buffer.from('ping'), 5353, ip(2));
  t.is((await answer).toString(), 'ping');
  await waitFor('the TCP connections to close', () => agent.status().every((s) => (s.stats?.active ?? 0) === 0 || s.protocol === 'UDP'));
  t.true(
    agent.status().some((s) => s.spn.endsWith('(internal)') || s.spn.endsWith('(external)')),
    'the el service has a split port',
  );

  const metrics = new Metrics({ agent, defaultMetrics: false });
  t.teardown(() => metrics.close());
  const text = await metrics.render();
  const start = text.indexOf('# HELP kube_userspace_proxy_service_port_connections_active ');
  const end = text.indexOf('# HELP kubeproxy_');
  t.true(start > text.indexOf('# HELP kube_userspace_proxy_endpoints '), 'the per-port metrics follow the totals');
  t.true(end > start, "kube-proxy's metrics follow the per-port ones");
  const reference = await promClientPortSeries(agent.status());
  t.deepEqual([...samples(text.slice(start, end))], [...samples(reference)]);
  t.is(text.slice(start, end), `${reference}\n`);
});
