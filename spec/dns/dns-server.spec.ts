import test from 'ava';
import type { ExecutionContext } from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { dig, digSupport } from '../helpers/dig.js';
import type { DigResult } from '../helpers/dig.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDns } from './dns-fixture.js';

/**
 * The DNS server as a user reaches it: the real dig, over UDP and TCP, against the zone built from
 * manifests. Without dig these tests are skipped with a message, except when CI=true: there they
 * must run.
 */
const support = await digSupport();
const mustRun = process.env['CI'] === 'true';
const digTest = support.ok || mustRun ? test : test.skip;
if (!support.ok) {
  if (mustRun) test('dig is installed (CI=true)', (t) => t.fail(`CI=true but the DNS tests cannot run: ${support.reason}`));
  else console.warn(`skipping the DNS tests: ${support.reason} (with CI=true they run, and fail)`);
}

const ip = loopbackBlock(191);

const MANIFESTS: Record<string, string> = {
  'web.yaml': `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIPs: ["${ip(1)}", "fd00:77:191::1"]
  ports:
  - {name: http, port: 18080}
  - {name: dns, port: 18053, protocol: UDP}
  - {name: metrics, port: 18081, targetPort: 9090}
`,
  'db.yaml': `
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-a, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: pg, port: 15432}]
endpoints:
- {addresses: ["10.191.0.1"], hostname: db-0}
- {addresses: ["10.191.0.2"], hostname: db-1}
- {addresses: ["10.191.0.3"]}
- {addresses: ["10.191.0.4"], hostname: db-3, conditions: {ready: false}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-b, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv6
ports: [{name: pg, port: 15432}]
endpoints:
- {addresses: ["fd00:191::1"], hostname: db-0}
`,
  'empty.yaml': `
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: empty-a, namespace: shop, labels: {kubernetes.io/service-name: empty}}
addressType: IPv4
endpoints:
- {addresses: ["10.191.1.1"], conditions: {ready: false}}
`,
  'unready.yaml': `
apiVersion: v1
kind: Service
metadata: {name: unready, namespace: shop}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: unready-a, namespace: shop, labels: {kubernetes.io/service-name: unready}}
addressType: IPv4
endpoints:
- {addresses: ["10.191.2.1"], conditions: {ready: false}}
- {addresses: ["10.191.2.2"]}
`,
  'ext.yaml': `
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: db.example.org}
---
apiVersion: v1
kind: Service
metadata: {name: alias, namespace: shop}
spec: {type: ExternalName, externalName: web.shop.svc.cluster.local.}
`,
};

const sorted = (r: DigResult, type?: string): string[] =>
  r.answers
    .filter((a) => type === undefined || a.type === type)
    .map((a) => a.data)
    .sort();

async function zone(t: ExecutionContext, config = {}) {
  return startDns(t, MANIFESTS, { config });
}

digTest('A and AAAA for a service with cluster IPs; names are case-insensitive; the TTL is 5 s', async (t) => {
  const { server } = await zone(t);
  const a = await dig(server, ['web.shop.svc.cluster.local', 'A']);
  t.is(a.status, 'NOERROR');
  t.true(a.flags.includes('aa'), a.output);
  t.deepEqual(a.answers, [{ name: 'web.shop.svc.cluster.local.', ttl: 5, type: 'A', data: ip(1) }]);
  const aaaa = await dig(server, ['WEB.Shop.SVC.cluster.LOCAL.', 'AAAA']);
  t.is(aaaa.status, 'NOERROR');
  t.deepEqual(sorted(aaaa), ['fd00:77:191::1']);
});

digTest('the TTL follows --dns-ttl, negative answers carry the zone SOA with it', async (t) => {
  const { server } = await zone(t, { dnsTtlMs: 42_000 });
  t.is((await dig(server, ['web.shop.svc.cluster.local'])).answers[0]!.ttl, 42);
  const nx = await dig(server, ['nothing.shop.svc.cluster.local']);
  t.is(nx.status, 'NXDOMAIN');
  t.is(nx.authority[0]!.type, 'SOA');
  t.regex(nx.authority[0]!.data, /^ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 42$/);
});

digTest('SRV for named ports of a service with cluster IPs, with its addresses as additional records', async (t) => {
  const { server } = await zone(t);
  const tcp = await dig(server, ['_http._tcp.web.shop.svc.cluster.local', 'SRV', '+additional']);
  t.deepEqual(sorted(tcp), ['0 100 18080 web.shop.svc.cluster.local.']);
  t.regex(tcp.output, new RegExp(`ADDITIONAL SECTION:\\n(.*\\n)*web\\.shop\\.svc\\.cluster\\.local\\.\\s+5\\s+IN\\s+A\\s+${ip(1).replaceAll('.', '\\.')}`));
  t.deepEqual(sorted(await dig(server, ['_dns._udp.web.shop.svc.cluster.local', 'SRV'])), ['0 100 18053 web.shop.svc.cluster.local.']);
  // The port of the service, not the target port: clients dial the cluster IP.
  t.deepEqual(sorted(await dig(server, ['_metrics._tcp.web.shop.svc.cluster.local', 'SRV'])), ['0 100 18081 web.shop.svc.cluster.local.']);
});

digTest('headless: the ready endpoints, one name per endpoint (its hostname, else its address), SRV per endpoint with the endpoint port', async (t) => {
  const { server } = await zone(t);
  t.deepEqual(sorted(await dig(server, ['db.shop.svc.cluster.local', 'A'])), ['10.191.0.1', '10.191.0.2', '10.191.0.3']);
  t.deepEqual(sorted(await dig(server, ['db.shop.svc.cluster.local', 'AAAA'])), ['fd00:191::1']);
  t.deepEqual(sorted(await dig(server, ['db-0.db.shop.svc.cluster.local', 'A'])), ['10.191.0.1']);
  t.deepEqual(sorted(await dig(server, ['db-0.db.shop.svc.cluster.local', 'AAAA'])), ['fd00:191::1']);
  t.deepEqual(sorted(await dig(server, ['10-191-0-3.db.shop.svc.cluster.local', 'A'])), ['10.191.0.3']);
  t.deepEqual(sorted(await dig(server, ['_pg._tcp.db.shop.svc.cluster.local', 'SRV'])), [
    '0 100 15432 10-191-0-3.db.shop.svc.cluster.local.',
    '0 100 15432 db-0.db.shop.svc.cluster.local.',
    '0 100 15432 db-1.db.shop.svc.cluster.local.',
  ]);
  // Not ready: no name at all.
  t.is((await dig(server, ['db-3.db.shop.svc.cluster.local', 'A'])).status, 'NXDOMAIN');
});

digTest('headless with publishNotReadyAddresses: every endpoint; without any ready endpoint: NXDOMAIN, as the specification says', async (t) => {
  const { server } = await zone(t);
  t.deepEqual(sorted(await dig(server, ['unready.shop.svc.cluster.local', 'A'])), ['10.191.2.1', '10.191.2.2']);
  for (const type of ['A', 'AAAA', 'SRV']) t.is((await dig(server, ['empty.shop.svc.cluster.local', type])).status, 'NXDOMAIN', type);
  t.is((await dig(server, ['_pg._tcp.empty.shop.svc.cluster.local', 'SRV'])).status, 'NXDOMAIN');
});

digTest('ExternalName: a CNAME for every type; a target inside the zone is followed', async (t) => {
  const { server } = await zone(t);
  for (const type of ['A', 'AAAA', 'CNAME']) {
    const r = await dig(server, ['ext.shop.svc.cluster.local', type]);
    t.is(r.status, 'NOERROR');
    t.deepEqual(
      r.answers.map((a) => `${a.type} ${a.data}`),
      ['CNAME db.example.org.'],
      type,
    );
  }
  const alias = await dig(server, ['alias.shop.svc.cluster.local', 'A']);
  t.deepEqual(
    alias.answers.map((a) => `${a.name} ${a.type} ${a.data}`),
    ['alias.shop.svc.cluster.local. CNAME web.shop.svc.cluster.local.', `web.shop.svc.cluster.local. A ${ip(1)}`],
  );
});

digTest('PTR for cluster IPs (IPv4 and IPv6) and for headless endpoints', async (t) => {
  const { server } = await zone(t);
  t.deepEqual(sorted(await dig(server, ['-x', ip(1)])), ['web.shop.svc.cluster.local.']);
  t.deepEqual(sorted(await dig(server, ['-x', 'fd00:77:191::1'])), ['web.shop.svc.cluster.local.']);
  t.deepEqual(sorted(await dig(server, ['-x', '10.191.0.1'])), ['db-0.db.shop.svc.cluster.local.']);
  t.deepEqual(sorted(await dig(server, ['-x', '10.191.0.3'])), ['10-191-0-3.db.shop.svc.cluster.local.']);
  t.deepEqual(sorted(await dig(server, ['-x', 'fd00:191::1'])), ['db-0.db.shop.svc.cluster.local.']);
  // Not one of ours, and names outside the zone are refused here.
  t.is((await dig(server, ['-x', '10.191.0.4'])).status, 'REFUSED');
});

digTest('NXDOMAIN versus NODATA: a name that exists without the type asked is NOERROR with no answer', async (t) => {
  const { server } = await zone(t);
  const cases: Array<[string, string, string]> = [
    ['web.shop.svc.cluster.local', 'TXT', 'NOERROR'],
    ['web.shop.svc.cluster.local', 'SRV', 'NOERROR'],
    ['_tcp.web.shop.svc.cluster.local', 'SRV', 'NOERROR'],
    ['_http._tcp.web.shop.svc.cluster.local', 'A', 'NOERROR'],
    ['db-0.db.shop.svc.cluster.local', 'SRV', 'NOERROR'],
    ['shop.svc.cluster.local', 'A', 'NOERROR'],
    ['svc.cluster.local', 'A', 'NOERROR'],
    ['cluster.local', 'A', 'NOERROR'],
    ['nosuch.shop.svc.cluster.local', 'A', 'NXDOMAIN'],
    ['nosuch.svc.cluster.local', 'A', 'NXDOMAIN'],
    ['_https._tcp.web.shop.svc.cluster.local', 'SRV', 'NXDOMAIN'],
    ['_http._udp.web.shop.svc.cluster.local', 'SRV', 'NXDOMAIN'],
    ['_sctp.web.shop.svc.cluster.local', 'SRV', 'NXDOMAIN'],
    ['x.web.shop.svc.cluster.local', 'A', 'NXDOMAIN'],
    ['web.shop.cluster.local', 'A', 'NXDOMAIN'],
    ['1-2-3-4.shop.pod.cluster.local', 'A', 'NXDOMAIN'],
  ];
  for (const [name, type, status] of cases) {
    const r = await dig(server, [name, type]);
    t.is(r.status, status, `${name} ${type}`);
    t.is(r.answers.length, 0, `${name} ${type}`);
    t.is(r.authority[0]?.type, 'SOA', `${name} ${type}`);
  }
  const version = await dig(server, ['dns-version.cluster.local', 'TXT']);
  t.deepEqual(sorted(version), ['"1.1.0"']);
});

digTest('an answer too big for UDP is truncated (TC) and whole over TCP; an EDNS0 buffer size is honoured', async (t) => {
  const endpoints = Array.from({ length: 20 }, (_, i) => `- {addresses: ["10.191.9.${i + 1}"]}`).join('\n');
  const f = await startDns(t, {
    'big.yaml': `
apiVersion: v1
kind: Service
metadata: {name: big, namespace: default}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: big-a, namespace: default, labels: {kubernetes.io/service-name: big}}
addressType: IPv4
endpoints:
${endpoints}
`,
  });
  const udp = await dig(f.server, ['big.default.svc.cluster.local', 'A', '+noedns', '+ignore']);
  t.true(udp.flags.includes('tc'), udp.output);
  t.is(udp.answers.length, 0);
  const tcp = await dig(f.server, ['big.default.svc.cluster.local', 'A', '+noedns', '+tcp']);
  t.false(tcp.flags.includes('tc'));
  t.is(tcp.answers.length, 20);
  // dig by itself: truncated over UDP, it asks again over TCP and gets everything.
  t.is((await dig(f.server, ['big.default.svc.cluster.local', 'A', '+noedns'])).answers.length, 20);
  // 20 records fit in the 1232 bytes an EDNS0 client may be sent over UDP.
  const edns = await dig(f.server, ['big.default.svc.cluster.local', 'A', '+bufsize=4096', '+ignore']);
  t.false(edns.flags.includes('tc'), edns.output);
  t.is(edns.answers.length, 20);
});

digTest('answers follow manifest changes: a new service, new endpoints, a deleted service', async (t) => {
  const f = await zone(t);
  const name = 'late.shop.svc.cluster.local';
  t.is((await dig(f.server, [name])).status, 'NXDOMAIN');
  await f.write(
    'late.yaml',
    `
apiVersion: v1
kind: Service
metadata: {name: late, namespace: shop}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: late-a, namespace: shop, labels: {kubernetes.io/service-name: late}}
addressType: IPv4
endpoints: [{addresses: ["10.191.5.1"]}]
`,
  );
  await waitFor('the new service to resolve', async () => sorted(await dig(f.server, [name])).join() === '10.191.5.1');
  await f.write(
    'late.yaml',
    `
apiVersion: v1
kind: Service
metadata: {name: late, namespace: shop}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: late-a, namespace: shop, labels: {kubernetes.io/service-name: late}}
addressType: IPv4
endpoints: [{addresses: ["10.191.5.1"]}, {addresses: ["10.191.5.2"]}]
`,
  );
  await waitFor('the second endpoint', async () => sorted(await dig(f.server, [name])).join() === '10.191.5.1,10.191.5.2');
  await f.remove('late.yaml');
  await waitFor('the deleted service to be gone', async () => (await dig(f.server, [name])).status === 'NXDOMAIN');
  t.is((await dig(f.server, ['-x', '10.191.5.1'])).status, 'REFUSED');
});

digTest('a malformed question gets FORMERR; a query of another opcode NOTIMP', async (t) => {
  const { server } = await zone(t);
  // Two questions in one query: dig cannot send that, so a raw datagram does.
  const { default: dnsPacket } = await import('dns-packet');
  const { udpRequest } = await import('../helpers/backends.js');
  const two = dnsPacket.encode({
    id: 7,
    type: 'query',
    questions: [
      { name: 'a.cluster.local', type: 'A' },
      { name: 'b.cluster.local', type: 'A' },
    ],
  });
  const reply = dnsPacket.decode(await udpRequest(server.host, server.port, two)) as unknown as { id: number; rcode: string };
  t.is(reply.id, 7);
  t.is(reply.rcode, 'FORMERR');
  const notify = await dig(server, ['web.shop.svc.cluster.local', '+opcode=notify']);
  t.is(notify.status, 'NOTIMP');
});
