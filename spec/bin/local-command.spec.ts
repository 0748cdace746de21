import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { freePort, httpPathEcho } from '../helpers/backends.js';
import { CLI, ROOT, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import type { Spawned } from '../helpers/process.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

// `kube-userspace-proxy local` as a laptop user types it, with dig and curl as the clients. Each
// test has its own pool (127.219.3x.0/24) and DNS port; the hosts file is a temp file, since
// these tests run as root and local would otherwise write /etc/hosts.

const exec = promisify(execFile);
const CI = process.env['CI'] === 'true';

interface Row {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly endpoints: number;
}

/** The table local prints once ready; every stdout line must be part of it. */
function readyOutput(stdout: string): { rows: Row[]; notes: string[]; dig: string[]; names: string } {
  const lines = stdout.trimEnd().split('\n');
  t0(/^NAME +ADDRESS +ENDPOINTS$/.test(lines[0]!), `header: ${lines[0]}`);
  const blank = lines.indexOf('');
  const notes = lines.slice(1, blank).filter((l) => l.startsWith('!') || l.startsWith('  '));
  const rows = lines
    .slice(1, blank)
    .filter((l) => !notes.includes(l))
    .map((l) => {
      const m = /^(\S+)\s+(\d+\.\d+\.\d+\.\d+):(\d+)\s+(\d+) endpoints?$/.exec(l);
      t0(m !== null, `row: ${l}`);
      return { name: m![1]!, host: m![2]!, port: Number(m![3]), endpoints: Number(m![4]) };
    });
  const tail = lines.slice(blank + 1);
  t0(tail.length === 2 && tail[0]!.startsWith('try: dig ') && tail[1]!.startsWith('names: '), `after the table: ${JSON.stringify(tail)}`);
  return { rows, notes, dig: tail[0]!.slice('try: '.length).split(' '), names: tail[1]! };
}

function t0(ok: boolean, what: string): void {
  if (!ok) throw new Error(`unexpected output of local: ${what}`);
}

/** Runs the dig command as printed, with bounded retries, and returns the addresses answered. */
async function dig(command: string[]): Promise<string[]> {
  const [bin, ...args] = command;
  const { stdout } = await exec(bin!, [...args, '+short', '+time=2', '+tries=2']);
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '');
}

async function curl(url: string): Promise<string> {
  const { stdout } = await exec('curl', ['-sS', '--max-time', '5', '-D', '-', url]);
  return stdout;
}

function manifests(services: Array<{ name: string; port: number; backendPort: number }>): string {
  return services
    .flatMap((s, i) => [
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${s.name}, namespace: shop}\nspec:\n  clusterIP: 10.96.12.${i + 7}\n  ports: [{name: http, port: ${s.port}, targetPort: ${s.backendPort}}]`,
      `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ${s.name}-1, namespace: shop, labels: {kubernetes.io/service-name: ${s.name}}}\naddressType: IPv4\nports: [{name: http, port: ${s.backendPort}}]\nendpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]`,
    ])
    .join('\n---\n');
}

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-local-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('local --manifests: the table on stdout, dig resolves the printed name to its pool address, curl reaches the backend there', async (t) => {
  const backends = await Promise.all(['web-pod', 'orders-pod'].map((n) => httpPathEcho('127.0.0.1', 0, n)));
  t.teardown(() => Promise.all(backends.map((b) => b.close())).then(() => undefined));
  const dir = await tempDir(t);
  const file = path.join(dir, 'shop.yaml');
  await writeFile(
    file,
    manifests([
      { name: 'web', port: 8080, backendPort: backends[0]!.port },
      { name: 'orders', port: 8080, backendPort: backends[1]!.port },
    ]),
  );
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, '127.0.0.1\tlocalhost\n');
  const dnsPort = await freePort();

  const proxy = spawnNode([
    CLI,
    'local',
    '--manifests',
    file,
    '--service-ip-pool',
    '127.219.30.0/24',
    '--dns-bind-address',
    `127.0.0.1:${dnsPort}`,
    '--healthz-bind-address=',
    '--metrics-bind-address=',
    '--hosts-file',
    hosts,
    '--log-format',
    'json',
  ]);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  await waitFor('the ready table', () => proxy.stdout().includes('\nnames: '), START_TIMEOUT_MS);

  const out = readyOutput(proxy.stdout());
  t.deepEqual(
    out.rows.map((r) => [r.name, r.port, r.endpoints]),
    [
      ['orders.shop.svc.cluster.local', 8080, 1],
      ['web.shop.svc.cluster.local', 8080, 1],
    ],
  );
  for (const r of out.rows) t.regex(r.host, /^127\.219\.30\.\d+$/, 'a pool address');
  t.not(out.rows[0]!.host, out.rows[1]!.host, 'an address per service');
  t.deepEqual(out.dig, ['dig', '@127.0.0.1', '-p', String(dnsPort), 'orders.shop.svc.cluster.local']);
  t.is(out.names, `names: in ${hosts} too (service, service.namespace and the full name), for every program`);

  t.deepEqual(await dig(out.dig), [out.rows[0]!.host], 'the printed dig command answers the pool address');
  t.deepEqual(await dig([...out.dig.slice(0, -1), 'web.shop.svc.cluster.local']), [out.rows[1]!.host]);
  t.regex(await curl(`http://${out.rows[1]!.host}:8080/hello`), /x-backend: web-pod[\s\S]*\r\n\r\nhello$/);
  t.regex(await curl(`http://${out.rows[0]!.host}:8080/hello`), /x-backend: orders-pod/);
  await waitFor('the hosts block', async () => (await readFile(hosts, 'utf8')).includes(`${out.rows[1]!.host}\tweb.shop.svc.cluster.local web.shop`), 5000);

  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
  t.is(await readFile(hosts, 'utf8'), '127.0.0.1\tlocalhost\n', 'the block removed on exit');
  t.notRegex(proxy.stdout(), /"level"/, 'logs stay on stderr');
});

test('local --kubeconfig K --context NAME --namespace shop: curl through the pool address reaches the pod through port-forward', async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const pod = await httpPathEcho('127.0.0.1', 0, 'orders-a');
  t.teardown(() => pod.close());
  api.portForwards.setPod('shop', 'orders-a', { 80: pod.port });
  api.create('services', {
    metadata: { namespace: 'shop', name: 'orders' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.40.1', clusterIPs: ['10.96.40.1'], ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 80 }] },
  });
  api.create('endpointslices', {
    metadata: { namespace: 'shop', name: 'orders-1', labels: { 'kubernetes.io/service-name': 'orders' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['192.0.2.1'], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace: 'shop', name: 'orders-a' } }],
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
  });
  api.create('services', {
    metadata: { namespace: 'tools', name: 'grafana' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.40.2', clusterIPs: ['10.96.40.2'], ports: [{ port: 3000, protocol: 'TCP' }] },
  });
  const dir = await tempDir(t);
  const kubeconfig = path.join(dir, 'kubeconfig');
  // The current context is a dead cluster: only --context makes this work.
  const text = api
    .kubeconfig()
    .replace('current-context: test', 'current-context: dead')
    .replace('contexts:\n', 'contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: test\n')
    .replace('clusters:\n', 'clusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:1\n');
  await writeFile(kubeconfig, text);
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, '');
  const dnsPort = await freePort();

  const proxy = spawnNode([
    CLI,
    'local',
    '--kubeconfig',
    kubeconfig,
    '--context',
    'test',
    '--namespace',
    'shop',
    '--service-ip-pool',
    '127.219.31.0/24',
    '--dns-bind-address',
    `127.0.0.1:${dnsPort}`,
    '--healthz-bind-address=',
    '--metrics-bind-address=',
    '--hosts-file',
    hosts,
    '--hostname-override',
    'laptop',
    '--log-format',
    'json',
  ]);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  await waitFor('the ready table', () => proxy.stdout().includes('\nnames: '), START_TIMEOUT_MS);

  const out = readyOutput(proxy.stdout());
  t.deepEqual(
    out.rows.map((r) => [r.name, r.port, r.endpoints]),
    [['orders.shop.svc.cluster.local', 8080, 1]],
    'shop only',
  );
  const address = out.rows[0]!.host;
  t.regex(address, /^127\.219\.31\.\d+$/);
  t.deepEqual(await dig(out.dig), [address]);
  t.regex(await curl(`http://${address}:8080/through`), /x-backend: orders-a[\s\S]*\r\n\r\nthrough$/);
  t.true(
    api.portForwards.requests.some((r) => r.status === 101),
    'through the API server',
  );
  t.regex(proxy.stderr(), /"dialVia":"port-forward"/);

  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
});

// Becoming nobody needs root and setpriv (util-linux); elsewhere skipped, except with CI=true.
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const asNobody = process.getuid?.() === 0 && setpriv !== undefined;
(asNobody || CI ? test : test.skip)('local as an ordinary user leaves /etc/hosts alone and says how to resolve the names', async (t) => {
  if (!asNobody) {
    t.fail('CI=true but this test cannot become nobody: it needs root and setpriv (util-linux)');
    return;
  }
  const backend = await httpPathEcho('127.0.0.1', 0, 'web-pod');
  t.teardown(() => backend.close());
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const file = path.join(dir, 'shop.yaml');
  // admin listens on 80, which Linux keeps for root (unless ip_unprivileged_port_start says otherwise).
  const lowPortsOk = Number((await readFile('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').catch(() => '1024')).trim()) <= 80;
  await writeFile(
    file,
    manifests([
      { name: 'web', port: 8080, backendPort: backend.port },
      { name: 'admin', port: 80, backendPort: backend.port },
    ]),
    { mode: 0o644 },
  );
  const dnsPort = await freePort();

  const child = spawn(
    setpriv!,
    [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      '--',
      process.execPath,
      CLI,
      'local',
      '--manifests',
      file,
      '--service-ip-pool',
      '127.219.32.0/24',
      '--dns-bind-address',
      `127.0.0.1:${dnsPort}`,
      '--healthz-bind-address=',
      '--metrics-bind-address=',
      '--log-format',
      'json',
    ],
    { cwd: ROOT, env: { ...process.env, HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const proxy: Pick<Spawned, 'child' | 'exited'> = { child, exited };
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  await waitFor('the ready table', () => stdout.includes('\nnames: '), START_TIMEOUT_MS);

  const out = readyOutput(stdout);
  t.is(out.names, `names: use the DNS server at 127.0.0.1:${dnsPort} or run with sudo for /etc/hosts`);
  t.deepEqual(
    out.rows.map((r) => [r.name, r.port]),
    [
      ['admin.shop.svc.cluster.local', 80],
      ['web.shop.svc.cluster.local', 8080],
    ],
  );
  const web = out.rows[1]!;
  t.deepEqual(await dig([...out.dig.slice(0, -1), web.name]), [web.host]);
  t.regex(await curl(`http://${web.host}:8080/x`), /x-backend: web-pod/);
  if (lowPortsOk) {
    t.log('net.ipv4.ip_unprivileged_port_start allows port 80 here: the refusal is not shown');
  } else {
    t.is(out.notes.length, 2);
    t.regex(out.notes[0]!, /^! shop\/admin:http \(TCP\): cannot listen on 127\.219\.32\.\d+:80: listen EACCES/);
    t.regex(out.notes[1]!, /sudo sysctl -w net\.ipv4\.ip_unprivileged_port_start=0$/);
  }
  t.notRegex(stderr, /hosts-file|hosts file/);
  t.notRegex(await readFile('/etc/hosts', 'utf8'), /kube-userspace-proxy/);
  t.is((await readFile('/etc/hosts', 'utf8')).includes('127.219.32.'), false);

  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
});

test('local --redirect iptables is refused with one clear line, exit code 2', async (t) => {
  const p = spawnNode([CLI, 'local', '--manifests', '/tmp', '--redirect', 'iptables']);
  t.is(await p.exited, 2);
  t.is(p.stdout(), '');
  t.is(
    p.stderr(),
    'kube-userspace-proxy: local: --redirect iptables cannot be combined with local: it listens on a pool address per Service (--redirect none); run the agent without "local" for the rules modes\n',
  );
});
