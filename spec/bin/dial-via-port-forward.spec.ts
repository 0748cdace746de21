import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { httpPathEcho } from '../helpers/backends.js';
import { CLI, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

// The command as a laptop user types it against a cluster whose pod IPs it cannot reach:
// --kubeconfig, --dial-via port-forward, --namespace and --selector, with curl as the client.

const ip = loopbackBlock(215);
const exec = promisify(execFile);

function service(namespace: string, name: string, clusterIP: string, labels: Record<string, string>): KubeObject {
  return {
    metadata: { namespace, name, labels },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 80 }] },
  };
}

function slice(namespace: string, svc: string, pods: string[]): KubeObject {
  return {
    metadata: { namespace, name: `${svc}-1`, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: pods.map((pod, i) => ({ addresses: [`192.0.2.${i + 1}`], conditions: { ready: true }, targetRef: { kind: 'Pod', namespace, name: pod } })),
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
  };
}

async function curl(url: string): Promise<string> {
  const { stdout } = await exec('curl', ['-sS', '--max-time', '5', '-D', '-', url]);
  return stdout;
}

test('kube-userspace-proxy --kubeconfig K --dial-via port-forward --namespace shop --selector app=orders: curl reaches both pods through the API server', async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const pods = await Promise.all(['orders-a', 'orders-b'].map((n) => httpPathEcho('127.0.0.1', 0, n)));
  t.teardown(() => Promise.all(pods.map((p) => p.close())).then(() => undefined));
  api.portForwards.setPod('shop', 'orders-a', { 80: pods[0]!.port });
  api.portForwards.setPod('shop', 'orders-b', { 80: pods[1]!.port });
  api.create('services', service('shop', 'orders', ip(1), { app: 'orders' }));
  api.create('endpointslices', slice('shop', 'orders', ['orders-a', 'orders-b']));
  api.create('services', service('shop', 'carts', ip(2), { app: 'carts' }));
  api.create('services', service('tools', 'orders', ip(3), { app: 'orders' }));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-pf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, api.kubeconfig());

  const proxy = spawnNode([
    CLI,
    '--kubeconfig',
    kubeconfig,
    '--dial-via',
    'port-forward',
    '--namespace',
    'shop',
    '--selector',
    'app=orders',
    '--workers',
    '2',
    '--hostname-override',
    'laptop',
    '--healthz-bind-address=',
    '--metrics-bind-address=',
    '--log-format',
    'json',
  ]);
  t.teardown(() => void proxy.child.kill('SIGKILL'));

  await waitFor('proxy answering', () => curl(`http://${ip(1)}:8080/ready`).then((r) => r.endsWith('\r\n\r\nready')), START_TIMEOUT_MS);
  const backends = new Set<string>();
  for (let i = 0; i < 4; i++) backends.add(/x-backend: (\S+)/.exec(await curl(`http://${ip(1)}:8080/hello`))![1]!);
  t.deepEqual([...backends].sort(), ['orders-a', 'orders-b']);
  t.true(api.portForwards.requests.filter((r) => r.status === 101).length >= 5, 'through the API server');

  const lines = proxy
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const opened = lines.filter((l) => l['message'] === 'opened listener').map((l) => l['service']);
  t.deepEqual(opened, ['shop/orders:http'], 'not carts (selector), not tools/orders (namespace)');
  t.true(lines.some((l) => l['message'] === 'setting not applied' && l['setting'] === 'workers'));

  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
});

test('--dial-via port-forward with --manifests is refused with one clear line, exit code 2', async (t) => {
  const p = spawnNode([CLI, '--manifests', '/tmp', '--dial-via', 'port-forward']);
  t.is(await p.exited, 2);
  t.regex(p.stderr(), /kube-userspace-proxy: --dial-via port-forward needs the Kubernetes API as the source/);
});
