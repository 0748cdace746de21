import test from 'ava';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import type { RuleContext, ServicePortRules } from '../../lib/rules/rule-backend.js';
import { escapeHtml } from '../../lib/server/escape-html.js';
import type { ServicePortStatusJson, StatusDocument } from '../../lib/server/status-document.js';
import { ENDPOINTS_PER_PORT, SERVICE_PORTS_PER_PAGE, STATUS_PAGE_CSP, serviceLink, statusPage } from '../../lib/server/status-page.js';
import { STATUS_PAGE_SCRIPT } from '../../lib/server/status-page-script.js';
import { servicePortName } from '../../lib/model/service-port-name.js';

function doc(redirectMode: string, servicePorts: ServicePortStatusJson[]): StatusDocument {
  return {
    redirectMode,
    healthy: true,
    reasons: [],
    draining: false,
    lastUpdated: '2026-01-01T00:00:00.000Z',
    currentTime: '2026-01-01T00:00:01.000Z',
    counts: { services: servicePorts.length, servicePorts: servicePorts.length, endpoints: 2 },
    source: null,
    servicePorts,
  };
}

function port(name: string, over: Partial<ServicePortStatusJson> = {}): ServicePortStatusJson {
  return {
    servicePort: name,
    protocol: 'TCP',
    portals: ['10.96.0.10:80'],
    listening: ['0.0.0.0:40001'],
    proxyPort: 40001,
    nodePort: 0,
    scheduler: 'rr',
    affinity: { type: 'None', timeoutSeconds: 0 },
    error: null,
    stats: { active: 2, total: 7, bytesIn: 10, bytesOut: 20, dialFailures: 1, dialRetries: 0, dialGiveUps: 0, noEndpointRejections: 0, udpEvictions: 0 },
    endpoints: [
      { endpoint: '10.0.0.1:8080', active: 2, total: 5, dialFailures: 1, inRotation: true },
      { endpoint: '10.0.0.2:8080', active: 0, total: 2, dialFailures: 0, inRotation: true },
    ],
    ...over,
  };
}

/** The cells `data-f` → number of the row whose opening tag contains `marker`. */
function rowNumbers(html: string, marker: string): Record<string, number> {
  const start = html.indexOf(marker);
  if (start < 0) throw new Error(`no row with ${marker}`);
  const row = html.slice(start, html.indexOf('</tr>', start));
  return Object.fromEntries([...row.matchAll(/data-f="(\w+)">(\d+)</g)].map((m) => [m[1]!, Number(m[2])]));
}

const rules: ServicePortRules = {
  spn: servicePortName('default', 'web', 'http'),
  protocol: 'TCP',
  portals: [{ ip: '10.96.0.10', port: 80, kind: 'clusterIP' }],
  nodePort: 0,
  proxyPort: 40001,
};
const context: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: '192.0.2.1', hostIPv6: undefined, nodePortIPs: undefined };

test('escapeHtml: the five characters that matter in content and quoted attributes', (t) => {
  t.is(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  t.is(escapeHtml(42), '42');
});

test('nothing from the API can inject markup: names, errors, addresses, the selected service and the rules', (t) => {
  const evil = '<script>alert(1)</script>';
  const sp = port(`default/${evil}:"onmouseover=alert(2)`, {
    portals: [`<img src=x onerror=alert(3)>:80`],
    error: `cannot listen: <b>${evil}</b>`,
    scheduler: '<i>rr</i>',
    affinity: { type: `<svg onload=alert(4)>`, timeoutSeconds: 1 },
    endpoints: [{ endpoint: `'><script>alert(5)</script>`, active: 0, total: 0, dialFailures: 0, inRotation: true }],
  });
  const page = statusPage(doc('iptables', [sp]), { service: sp.servicePort, rules: `-A KUBE-PORTALS-CONTAINER -m comment --comment "${evil}"` });
  t.is(page.status, 200);
  // Exactly one script element, the page's own, with no data in it.
  t.is([...page.html.matchAll(/<script/gi)].length, 1);
  t.true(page.html.includes(`<script>${STATUS_PAGE_SCRIPT}</script>`));
  for (const bad of ['<img', '<svg', '<i>', '<b><', 'alert(1)</script>', `"onmouseover`, `'>`]) t.false(page.html.includes(bad), bad);
  t.true(page.html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.true(page.html.includes('cannot listen: &lt;b&gt;'));
  // The link carries the name percent-encoded, then HTML-escaped.
  t.true(page.html.includes(`href="${escapeHtml(serviceLink(sp.servicePort))}"`));
  t.false(serviceLink(sp.servicePort).includes('<'));
  // And the CSP allows only that script, by hash.
  t.regex(STATUS_PAGE_CSP, /script-src 'sha256-[A-Za-z0-9+/]+=*'/);
  t.false(STATUS_PAGE_CSP.includes('unsafe-inline'));
});

test('empty state: no service ports says so, and has no table', (t) => {
  const page = statusPage(doc('none', []));
  t.is(page.status, 200);
  t.true(page.html.includes('No service ports'));
  t.false(page.html.includes('<table'));
  t.true(page.html.includes('data-total="0"'));
});

test('the table: a row per service port with its counters, a row per endpoint with its own, state colours', (t) => {
  const page = statusPage(
    doc('iptables', [
      port('default/web:http'),
      port('default/empty:http', { endpoints: [], stats: null }),
      port('default/broken:http', { error: 'listen EADDRINUSE 0.0.0.0:80', endpoints: [] }),
      port('default/old:http', { endpoints: [{ endpoint: '10.0.0.9:80', active: 1, total: 1, dialFailures: 0, inRotation: false }] }),
    ]),
  );
  t.deepEqual(rowNumbers(page.html, 'data-sp="default/web:http" data-proto="TCP" data-sig'), { active: 2, total: 7, dialFailures: 1, noEndpointRejections: 0, bytesIn: 10, bytesOut: 20 });
  t.deepEqual(rowNumbers(page.html, 'data-ep="10.0.0.1:8080"'), { active: 2, total: 5, dialFailures: 1 });
  t.deepEqual(rowNumbers(page.html, 'data-ep="10.0.0.2:8080"'), { active: 0, total: 2, dialFailures: 0 });
  t.regex(page.html, /<tr class="sp up" data-sp="default\/web:http"/);
  t.regex(page.html, /<tr class="sp noep" data-sp="default\/empty:http"/);
  t.regex(page.html, /<tr class="sp down" data-sp="default\/broken:http"/);
  t.regex(page.html, /<tr class="ep drain" data-sp="default\/old:http"/);
  t.true(page.html.includes('listen EADDRINUSE 0.0.0.0:80'));
  t.true(page.html.includes('<td class="n" data-f="total">0</td>'), 'a port without stats shows zeros');
  t.false(page.html.includes('id="path"'), 'no service chosen: no path');
});

test('the packet path in iptables mode: portal, the marked rules from the iptables renderer, proxy port, endpoints', (t) => {
  const text = new IptablesRules().render([rules], context);
  const page = statusPage(doc('iptables', [port('default/web:http')]), { service: 'default/web:http', rules: text });
  t.is(page.status, 200);
  const path = page.html.slice(page.html.indexOf('<section id="path">'), page.html.indexOf('</section>'));
  t.true(path.includes('<code>10.96.0.10:80</code>'));
  t.true(path.includes('<b>Proxy port</b> <code>40001</code>'));
  t.true(path.includes('<code>10.0.0.1:8080</code> (2 active, 5 total)'));
  const marked = [...path.matchAll(/<mark>(.*?)<\/mark>/g)].map((m) => m[1]!);
  t.true(marked.length > 0);
  t.true(
    marked.some((l) => l.includes('-d 10.96.0.10/32') && l.includes('-j REDIRECT --to-ports 40001')),
    marked.join('\n'),
  );
  t.true(marked.every((l) => l.includes('default/web:http')));
  t.regex(page.html, /<tr class="sp up sel" data-sp="default\/web:http"/);
});

test('the packet path in nftables mode: the map element that sends the portal to the proxy port', (t) => {
  const text = new NftablesRules().render([rules], context);
  const page = statusPage(doc('nftables', [port('default/web:http')]), { service: 'default/web:http', rules: text });
  const marked = [...page.html.matchAll(/<mark>(.*?)<\/mark>/g)].map((m) => m[1]!);
  t.true(
    marked.some((l) => l.includes('10.96.0.10 . tcp . 80') && l.includes(': 40001')),
    marked.join('\n'),
  );
  t.true(page.html.includes('the nftables rules below'));
});

test('the packet path in none mode: no rule, the listener is the portal', (t) => {
  const sp = port('default/web:http', { listening: ['10.96.0.10:80'], proxyPort: 0 });
  const page = statusPage(doc('none', [sp]), { service: 'default/web:http' });
  const path = page.html.slice(page.html.indexOf('<section id="path">'), page.html.indexOf('</section>'));
  t.true(path.includes('<b>No rule</b>'));
  t.true(path.includes('<code>10.96.0.10:80</code>), so the packet reaches it unchanged'));
  t.false(path.includes('<pre'));
  t.false(path.includes('Proxy port'));
  t.regex(page.html, /data-sp="default\/web:http"[^>]*>.*?<td class="n">portal<\/td>/);
});

test('an unknown service answers 404 with the whole table still there', (t) => {
  const page = statusPage(doc('none', [port('default/web:http')]), { service: 'default/nope:http' });
  t.is(page.status, 404);
  t.true(page.html.includes('No service port default/nope:http here.'));
  t.true(page.html.includes('data-sp="default/web:http"'));
});

test('thousands of service ports are paged, and endpoints per port capped', (t) => {
  const many = Array.from({ length: 2 * SERVICE_PORTS_PER_PAGE + 7 }, (_, i) => port(`ns/svc-${String(i).padStart(5, '0')}:http`));
  many[0] = port(many[0]!.servicePort, {
    endpoints: Array.from({ length: ENDPOINTS_PER_PORT + 5 }, (_, i) => ({ endpoint: `10.1.${i >> 8}.${i & 255}:80`, active: 0, total: 0, dialFailures: 0, inRotation: true })),
  });
  const count = (html: string): number => [...html.matchAll(/<tr class="sp /g)].length;
  const first = statusPage(doc('iptables', many));
  t.is(count(first.html), SERVICE_PORTS_PER_PAGE);
  t.is([...first.html.matchAll(/data-ep="10\.1\./g)].length, ENDPOINTS_PER_PORT);
  t.true(first.html.includes('and 5 more endpoints'));
  t.true(first.html.includes(`Service ports 1–${SERVICE_PORTS_PER_PAGE} of ${many.length}`));
  const last = statusPage(doc('iptables', many), { page: 3 });
  t.is(count(last.html), 7);
  t.true(last.html.includes('ns/svc-01006:http'));
  t.is(count(statusPage(doc('iptables', many), { page: 99 }).html), 7, 'past the end: the last page');
  t.is(count(statusPage(doc('iptables', many), { page: Number.NaN }).html), SERVICE_PORTS_PER_PAGE);
});
