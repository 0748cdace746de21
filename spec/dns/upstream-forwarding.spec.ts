import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { dig, digSupport } from '../helpers/dig.js';
import { BIG_NAME, startUpstreamDns } from '../helpers/upstream-dns.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDns } from './dns-fixture.js';

/**
 * Names outside the cluster domain: forwarded to the name servers of --resolv-conf, or refused.
 * The "system resolver" is a stand-in DNS server of the test's own on loopback; no query leaves
 * the machine. Skipped without dig except when CI=true.
 */
const support = await digSupport();
const mustRun = process.env['CI'] === 'true';
const digTest = support.ok || mustRun ? test : test.skip;
if (!support.ok) {
  if (mustRun) test('dig is installed (CI=true)', (t) => t.fail(`CI=true but the DNS tests cannot run: ${support.reason}`));
  else console.warn(`skipping the DNS forwarding tests: ${support.reason} (with CI=true they run, and fail)`);
}

const ip = loopbackBlock(192);

const SERVICE = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: "${ip(1)}"
  ports: [{name: http, port: 18080}]
`;

async function resolvConf(t: ExecutionContext, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-resolv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'resolv.conf');
  await writeFile(file, text);
  return file;
}

digTest('forward: a name outside the zone is answered by the resolv.conf name server, over UDP and TCP', async (t) => {
  const upstream = await startUpstreamDns(t, ip(9));
  const conf = await resolvConf(t, `# written by the test\nsearch example.test\nnameserver ${upstream.host}\noptions ndots:1\n`);
  const { server } = await startDns(t, { 'web.yaml': SERVICE }, { config: { dnsUpstream: 'forward', resolvConf: conf }, upstreamPort: upstream.port });

  const r = await dig(server, ['www.example.test', 'A']);
  t.is(r.status, 'NOERROR');
  t.true(r.flags.includes('ra'), r.output);
  t.false(r.flags.includes('aa'));
  t.deepEqual(
    r.answers.map((a) => a.data),
    ['192.0.2.1'],
  );
  t.deepEqual(upstream.queries, ['udp:www.example.test:A']);

  // The upstream's NXDOMAIN comes back as it is.
  t.is((await dig(server, ['nothing.example.test', 'AAAA'])).status, 'NXDOMAIN');
  // A reverse name that is not one of the zone's addresses goes upstream too.
  t.is((await dig(server, ['-x', '192.0.2.77'])).status, 'NXDOMAIN');
  t.true(upstream.queries.includes('udp:77.2.0.192.in-addr.arpa:PTR'));
  // The zone's own names never do.
  t.deepEqual(
    (await dig(server, ['web.shop.svc.cluster.local'])).answers.map((a) => a.data),
    [ip(1)],
  );
  t.false(upstream.queries.some((q) => q.includes('cluster.local')));

  // Truncated upstream: dig sees TC over UDP, asks again over TCP, and the TCP query is forwarded over TCP.
  const big = await dig(server, [BIG_NAME, 'A', '+noedns']);
  t.is(big.answers.length, 60);
  t.true(upstream.queries.includes(`udp:${BIG_NAME}:A`));
  t.true(upstream.queries.includes(`tcp:${BIG_NAME}:A`));
});

digTest('forward: no usable name server gives SERVFAIL; an edited resolv.conf is read again', async (t) => {
  const upstream = await startUpstreamDns(t, ip(10));
  const conf = await resolvConf(t, '# no name servers yet\n');
  const { server } = await startDns(t, { 'web.yaml': SERVICE }, { config: { dnsUpstream: 'forward', resolvConf: conf }, upstreamPort: upstream.port });
  t.is((await dig(server, ['www.example.test'])).status, 'SERVFAIL');
  await writeFile(conf, `nameserver ${upstream.host}\n`);
  await waitFor('the new name server to be used', async () => (await dig(server, ['www.example.test'])).status === 'NOERROR');
  t.true(upstream.queries.some((q) => q.startsWith('udp:www')));
});

digTest('refuse: a name outside the zone is REFUSED and nothing is sent upstream', async (t) => {
  const upstream = await startUpstreamDns(t, ip(11));
  const conf = await resolvConf(t, `nameserver ${upstream.host}\n`);
  const { server } = await startDns(t, { 'web.yaml': SERVICE }, { config: { dnsUpstream: 'refuse', resolvConf: conf }, upstreamPort: upstream.port });
  const r = await dig(server, ['www.example.test', 'A']);
  t.is(r.status, 'REFUSED');
  t.false(r.flags.includes('ra'));
  // dig sends EDNS0; the answer, an error too, carries an OPT record back.
  t.regex(r.output, /EDNS: version: 0/);
  t.is((await dig(server, ['-x', '192.0.2.77'])).status, 'REFUSED');
  t.is((await dig(server, ['www.example.test', 'A', '+tcp'])).status, 'REFUSED');
  t.deepEqual(upstream.queries, []);
  // The zone still answers.
  t.is((await dig(server, ['web.shop.svc.cluster.local'])).status, 'NOERROR');
});
