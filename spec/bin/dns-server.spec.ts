import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { freePort } from '../helpers/backends.js';
import { dig, digSupport } from '../helpers/dig.js';
import { CLI, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

/** The command with --dns-bind-address, queried with the real dig. Skipped without dig except when CI=true. */
const support = await digSupport();
const mustRun = process.env['CI'] === 'true';
const digTest = support.ok || mustRun ? test : test.skip;
if (!support.ok) {
  if (mustRun) test('dig is installed (CI=true)', (t) => t.fail(`CI=true but the DNS tests cannot run: ${support.reason}`));
  else console.warn(`skipping the command's DNS test: ${support.reason} (with CI=true they run, and fail)`);
}

const ip = loopbackBlock(194);

digTest("--dns-bind-address serves the manifests' services, headless ones too, under --cluster-domain with --dns-ttl; --dns-upstream refuse", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-dns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    path.join(dir, 'svc.yaml'),
    `
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  clusterIP: "${ip(1)}"
  ports: [{name: http, port: 18080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-a, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: ["10.194.0.1"], hostname: db-0}]
`,
  );
  const server = { host: ip(53), port: await freePort(ip(53)) };
  const proxy = spawnNode([
    CLI,
    '--manifests',
    dir,
    '--dns-bind-address',
    `${server.host}:${server.port}`,
    '--cluster-domain',
    'corp.test',
    '--dns-ttl',
    '17s',
    '--dns-upstream',
    'refuse',
    '--healthz-bind-address=',
    '--metrics-bind-address=',
    '--log-format',
    'json',
  ]);
  t.teardown(() => void proxy.child.kill('SIGKILL'));

  const a = await waitFor(
    'the name to resolve',
    async () => {
      const r = await dig(server, ['orders.shop.svc.corp.test']).catch(() => undefined);
      return r?.status === 'NOERROR' ? r : undefined;
    },
    START_TIMEOUT_MS,
  );
  t.deepEqual(
    a.answers.map((r) => `${r.ttl} ${r.data}`),
    [`17 ${ip(1)}`],
  );
  t.deepEqual(
    (await dig(server, ['db-0.db.shop.svc.corp.test', '+tcp'])).answers.map((r) => r.data),
    ['10.194.0.1'],
  );
  t.is((await dig(server, ['orders.shop.svc.cluster.local'])).status, 'REFUSED');

  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
  t.regex(proxy.stderr(), /"message":"DNS server listening"/);
});

test('a --dns-bind-address that is taken is one clear error and exit code 1', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-dns-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'empty.yaml'), '');
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => taken.bind(0, ip(54), () => resolve()));
  t.teardown(() => taken.close());
  const address = `${ip(54)}:${taken.address().port}`;
  const proxy = spawnNode([CLI, '--manifests', dir, '--dns-bind-address', address, '--healthz-bind-address=', '--metrics-bind-address=', '--log-format', 'text']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  t.is(await proxy.exited, 1);
  t.regex(proxy.stderr(), new RegExp(`start failed.*port conflict: ${address.replaceAll('.', '\\.')} is already in use`));
});
