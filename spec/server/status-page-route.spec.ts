import test from 'ava';
import type { StatusDocument } from '../../lib/server/status-document.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRequest } from '../helpers/backends.js';
import { RenderedRules } from '../helpers/rendered-rules.js';
import { get, startMetricsServer, startProxy } from './fixture.js';

const ip = loopbackBlock(176);

function cells(html: string, marker: string): Record<string, number> {
  const start = html.indexOf(marker);
  if (start < 0) throw new Error(`no row with ${marker}`);
  const row = html.slice(start, html.indexOf('</tr>', start));
  return Object.fromEntries([...row.matchAll(/data-f="(\w+)">(\d+)</g)].map((m) => [m[1]!, Number(m[2])]));
}

test('/ answers 200 text/html: the static table, with the counters /status has, and no JavaScript needed', async (t) => {
  const echo = await tcpEcho(ip(10));
  t.teardown(() => echo.close());
  const { agent } = await startProxy(t, {
    'web.yaml': serviceYaml('web', ip(1), [{ name: 'http', port: 8080 }], { affinityTimeout: 600 }),
    'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: echo.port }], [{ ip: ip(10) }]),
    'idle.yaml': serviceYaml('idle', ip(2), [{ name: 'http', port: 8080 }]),
  });
  const { url } = await startMetricsServer(t, agent, false);
  for (let i = 0; i < 3; i++) await tcpRequest(ip(1), 8080, 'hello');

  const res = await get(`${url}/`);
  t.is(res.status, 200);
  t.is(res.headers['content-type'], 'text/html; charset=utf-8');
  t.regex(String(res.headers['content-security-policy']), /^default-src 'none'; script-src 'sha256-/);
  const doc = JSON.parse((await get(`${url}/status`)).body) as StatusDocument;
  const web = doc.servicePorts.find((sp) => sp.servicePort === 'default/web:http')!;
  const endpoint = `${ip(10)}:${echo.port}`;
  t.is(web.endpoints[0]?.total, 3);
  t.deepEqual(cells(res.body, 'data-sp="default/web:http" data-proto="TCP" data-sig'), {
    active: web.stats!.active,
    total: web.stats!.total,
    dialFailures: web.stats!.dialFailures,
    noEndpointRejections: web.stats!.noEndpointRejections,
    bytesIn: web.stats!.bytesIn,
    bytesOut: web.stats!.bytesOut,
  });
  t.deepEqual(cells(res.body, `data-ep="${endpoint}"`), { active: 0, total: 3, dialFailures: 0 });
  t.true(res.body.includes(`<td>${ip(1)}:8080</td>`));
  t.true(res.body.includes('<td>ClientIP 600s</td>'));
  t.regex(res.body, /<tr class="sp noep" data-sp="default\/idle:http"/);
  t.is((await get(`${url}/`, 'HEAD')).status, 200);
});

test('/?service= shows the path in none mode; an unknown service port is a 404 page', async (t) => {
  const { agent } = await startProxy(t, { 'a.yaml': serviceYaml('a', ip(3), [{ name: 'http', port: 8080 }]) });
  const { url } = await startMetricsServer(t, agent, false);
  const res = await get(`${url}/?service=${encodeURIComponent('default/a:http')}`);
  t.is(res.status, 200);
  t.true(res.body.includes('<b>No rule</b>'));
  const missing = await get(`${url}/?service=${encodeURIComponent('default/<b>:http')}`);
  t.is(missing.status, 404);
  t.is(missing.headers['content-type'], 'text/html; charset=utf-8');
  t.true(missing.body.includes('No service port default/&lt;b&gt;:http here.'));
});

test('/?service= in a rules mode shows the rules the backend renders for that port alone, with its proxy port', async (t) => {
  const echo = await tcpEcho(ip(11));
  t.teardown(() => echo.close());
  const { agent } = await startProxy(
    t,
    {
      'b.yaml': serviceYaml('b', ip(4), [{ name: 'http', port: 8080 }]),
      'b-slice.yaml': sliceYaml('b', 'b-1', [{ name: 'http', port: echo.port }], [{ ip: ip(11) }]),
      'c.yaml': serviceYaml('c', ip(5), [{ name: 'http', port: 8080 }]),
    },
    { rules: new RenderedRules('iptables'), config: { bindAddress: '0.0.0.0' } },
  );
  const { url } = await startMetricsServer(t, agent, false);
  const proxyPort = agent.status().find((s) => s.spn === 'default/b:http')!.proxyPort;
  t.true(proxyPort > 0);
  const res = await get(`${url}/?service=${encodeURIComponent('default/b:http')}`);
  t.is(res.status, 200);
  const marked = [...res.body.matchAll(/<mark>(.*?)<\/mark>/g)].map((m) => m[1]!);
  t.true(
    marked.some((l) => l.includes(`-d ${ip(4)}/32`) && l.includes(`-j REDIRECT --to-ports ${proxyPort}`)),
    marked.join('\n'),
  );
  t.false(res.body.includes(`-d ${ip(5)}/32`), 'only the chosen service port');
  t.true(res.body.includes(`<b>Proxy port</b> <code>${proxyPort}</code>`));
});

test('/?service= when the backend cannot render the rules (proxy bound to loopback) shows why, not a 500', async (t) => {
  const { agent } = await startProxy(t, { 'd.yaml': serviceYaml('d', ip(6), [{ name: 'http', port: 8080 }]) }, { rules: new RenderedRules('iptables') });
  const { url } = await startMetricsServer(t, agent, false);
  const res = await get(`${url}/?service=${encodeURIComponent('default/d:http')}`);
  t.is(res.status, 200);
  t.regex(res.body, /# cannot render the rules: cannot redirect to a proxy bound to localhost/);
});
