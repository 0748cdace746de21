import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import test from 'ava';
import { RoundRobinBalancer } from '../../lib/balancer/round-robin-balancer.js';
import type { StatusDocument } from '../../lib/server/status-document.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRequest } from '../helpers/backends.js';
import { CHROMIUM, dumpDom, screenshot } from '../helpers/chromium.js';
import { RenderedRules } from '../helpers/rendered-rules.js';
import { get, startMetricsServer, startProxy } from './fixture.js';

/**
 * The live page in a real browser (Debian's headless chromium). Skipped when chromium is missing,
 * except with CI=true: there it must run.
 */
const mustRun = process.env['CI'] === 'true';
const browserTest = CHROMIUM !== undefined || mustRun ? test : test.skip;
if (CHROMIUM === undefined && !mustRun) test('live page browser tests (skipped: chromium is not installed)', (t) => t.log('apt-get install chromium to run them'));

const ip = loopbackBlock(177);
/** Where screenshots are kept (gitignored); CI may collect it. */
const ARTIFACTS = path.resolve('spec-artifacts');
const N = 5;

/** The cells `data-f` → number of the first row whose opening tag contains `marker`. */
function cells(html: string, marker: string): Record<string, number> {
  const start = html.indexOf(marker);
  if (start < 0) throw new Error(`no row with ${marker}`);
  const row = html.slice(start, html.indexOf('</tr>', start));
  return Object.fromEntries([...row.matchAll(/data-f="(\w+)">(\d+)</g)].map((m) => [m[1]!, Number(m[2])]));
}

/**
 * A front for the metrics server that sends N connections through the agent just before it passes
 * on the page's first /status poll: the page was rendered with none of them, so numbers showing
 * them can only have come from the live update.
 */
async function trafficOnFirstPoll(t: { teardown(fn: () => unknown): void }, upstream: string, traffic: () => Promise<void>): Promise<string> {
  let polled = false;
  const server = http.createServer((req, res) => {
    void (async () => {
      if (req.url === '/status' && !polled) {
        polled = true;
        await traffic();
      }
      const r = await get(`${upstream}${req.url ?? '/'}`);
      res.writeHead(r.status, {
        'Content-Type': String(r.headers['content-type']),
        ...(r.headers['content-security-policy'] ? { 'Content-Security-Policy': String(r.headers['content-security-policy']) } : {}),
      });
      res.end(r.body);
    })().catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

browserTest('after N connections the live-updated page shows what /status says; a screenshot is kept', async (t) => {
  const echo = await tcpEcho(ip(10));
  t.teardown(() => echo.close());
  const { agent } = await startProxy(
    t,
    {
      'web.yaml': serviceYaml('web', ip(1), [{ name: 'http', port: 8080 }], { affinityTimeout: 10800 }),
      'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: echo.port }], [{ ip: ip(10) }, { ip: ip(11) }]),
      'api.yaml': serviceYaml('api', ip(2), [{ name: 'grpc', port: 9090 }], { namespace: 'shop' }),
      'api-slice.yaml': sliceYaml('api', 'api-1', [{ name: 'grpc', port: echo.port }], [{ ip: ip(10) }], 'shop'),
      'dns.yaml': serviceYaml('dns', ip(3), [{ name: 'dns', port: 5353, protocol: 'UDP' }], { namespace: 'kube-system' }),
    },
    // Sorted order from the top: every connection of this client goes to ip(10) (affinity pins it).
    { balancer: new RoundRobinBalancer({ random: () => 0.999_999 }) },
  );
  const { url } = await startMetricsServer(t, agent, false);
  const endpoint = `${ip(10)}:${echo.port}`;
  const front = await trafficOnFirstPoll(t, url, async () => {
    for (let i = 0; i < N; i++) await tcpRequest(ip(1), 8080, `request ${i}`);
  });

  const dom = await dumpDom(`${front}/`);
  const doc = JSON.parse((await get(`${url}/status`)).body) as StatusDocument;
  const web = doc.servicePorts.find((sp) => sp.servicePort === 'default/web:http')!;
  const e = web.endpoints.find((x) => x.endpoint === endpoint)!;
  t.is(e.total, N, '/status counted the N connections');
  t.regex(dom, /<body[^>]* data-polls="[1-9]/, 'the script polled /status');
  t.regex(dom, /id="live" class="ok">live, updated /);
  t.deepEqual(cells(dom, `data-ep="${endpoint}"`), { active: e.active, total: e.total, dialFailures: e.dialFailures });
  t.deepEqual(cells(dom, 'data-sp="default/web:http" data-proto="TCP" data-sig'), {
    active: web.stats!.active,
    total: web.stats!.total,
    dialFailures: web.stats!.dialFailures,
    noEndpointRejections: web.stats!.noEndpointRejections,
    bytesIn: web.stats!.bytesIn,
    bytesOut: web.stats!.bytesOut,
  });
  t.deepEqual(cells(dom, `data-ep="${ip(11)}:${echo.port}"`), { active: 0, total: 0, dialFailures: 0 });

  // The page with one service port's packet path, as a person sees it.
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'status-page.png');
  await screenshot(`${url}/?service=${encodeURIComponent('default/web:http')}`, file);
  const png = await readFile(file);
  t.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  t.log(`screenshot: ${file}`);
});

browserTest('in a rules mode the page shows the rules that capture the portal; a screenshot is kept', async (t) => {
  const echo = await tcpEcho(ip(12));
  t.teardown(() => echo.close());
  const { agent } = await startProxy(
    t,
    {
      'web.yaml': serviceYaml('web', ip(5), [{ name: 'http', port: 80 }], { affinityTimeout: 10800 }),
      'web-slice.yaml': sliceYaml('web', 'web-1', [{ name: 'http', port: echo.port }], [{ ip: ip(12) }, { ip: ip(13) }, { ip: ip(14) }]),
      'api.yaml': serviceYaml('api', ip(6), [{ name: 'grpc', port: 9090 }], { namespace: 'shop' }),
      'api-slice.yaml': sliceYaml('api', 'api-1', [{ name: 'grpc', port: echo.port }], [{ ip: ip(12) }], 'shop'),
      'dns.yaml': serviceYaml('dns', ip(7), [{ name: 'dns', port: 53, protocol: 'UDP' }], { namespace: 'kube-system' }),
    },
    { rules: new RenderedRules('iptables'), config: { bindAddress: '0.0.0.0' } },
  );
  const { url } = await startMetricsServer(t, agent, false);
  // No rule is applied here, so the traffic goes to the proxy port the rule would redirect to.
  const proxyPort = agent.status().find((s) => s.spn === 'default/web:http')!.proxyPort;
  for (let i = 0; i < 3; i++) await tcpRequest('127.0.0.1', proxyPort, `request ${i}`);
  const target = `${url}/?service=${encodeURIComponent('default/web:http')}`;
  const dom = await dumpDom(target);
  t.regex(dom, new RegExp(`<mark>-A KUBE-PORTALS-CONTAINER -d ${ip(5).replace(/\./g, '\\.')}/32 -p tcp [^<]*-j REDIRECT --to-ports ${proxyPort}</mark>`));
  t.regex(dom, /data-polls="[1-9]/);
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, 'status-page-iptables.png');
  await screenshot(target, file);
  t.true((await readFile(file)).length > 1000);
});

browserTest('a Service whose name carries a script cannot run it: the DOM holds only the text', async (t) => {
  const { agent } = await startProxy(t, { 'x.yaml': serviceYaml('x', ip(4), [{ name: 'http', port: 8080 }]) });
  // Manifest names are validated as DNS labels, so the hostile text arrives the way other API data
  // does: through a view of the agent whose status carries it.
  const evil = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>';
  const view = {
    status: () => agent.status().map((s) => ({ ...s, spn: `default/${evil}:http` as typeof s.spn, error: evil })),
    health: () => agent.health(),
    counts: () => agent.counts(),
    redirectMode: agent.redirectMode,
    sourceHealth: () => agent.sourceHealth(),
  };
  const { url } = await startMetricsServer(t, view, false);
  const dom = await dumpDom(`${url}/?service=${encodeURIComponent(`default/${evil}:http`)}`);
  t.regex(dom, /<title>kube-userspace-proxy · default\/&lt;img/);
  t.false(dom.includes('pwned</title>'));
  t.false(dom.includes('<img'));
  t.is([...dom.matchAll(/<script/g)].length, 1);
  t.regex(dom, /data-polls="[1-9]/, 'the live script still runs');
});
