import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { httpPathEcho } from '../helpers/backends.js';
import { CLI, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

const run = promisify(execFile);
const HOSTS = "127.0.0.1\tlocalhost\n# the user's own line\n10.0.0.7 nas.home   \n";

async function fixture(t: ExecutionContext, clusterIP = '10.96.0.10'): Promise<{ dir: string; hosts: string; manifest: string }> {
  const backend = await httpPathEcho();
  t.teardown(() => backend.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-names-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const manifest = path.join(dir, 'web.yaml');
  await writeFile(
    manifest,
    serviceYaml('web', clusterIP, [{ name: 'http', port: 8080, targetPort: backend.port }], { namespace: 'shop' }) +
      '---\n' +
      sliceYaml('web', 'web-1', [{ name: 'http', port: backend.port }], [{ ip: '127.0.0.1' }], 'shop'),
  );
  const hosts = path.join(dir, 'hosts');
  await writeFile(hosts, HOSTS);
  return { dir, hosts, manifest };
}

async function blockAddress(hosts: string): Promise<string | undefined> {
  return /^(\d+\.\d+\.\d+\.\d+)\tweb\.shop\.svc\.cluster\.local web\.shop web$/m.exec(await readFile(hosts, 'utf8'))?.[1];
}

test('as a user runs it: names in the hosts file, curl by address, SIGTERM removes the block and exits 0, other lines intact', async (t) => {
  const { hosts, manifest } = await fixture(t);
  const proxy = spawnNode([CLI, '--manifests', manifest, '--service-ip-pool', '127.219.20.0/24', '--hosts-file', hosts, '--healthz-bind-address=', '--metrics-bind-address=', '--log-format', 'json']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  const ip = await waitFor('the hosts block', () => blockAddress(hosts), START_TIMEOUT_MS);
  t.regex(ip, /^127\.219\.20\./);
  const { stdout } = await run('curl', ['-sS', '--max-time', '5', `http://${ip}:8080/ok`]);
  t.is(stdout, 'ok');
  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
  t.is(await readFile(hosts, 'utf8'), HOSTS);
  t.regex(proxy.stderr(), /"message":"hosts file block removed"/);
});

test('a hosts file that cannot be written is one error line, and the proxy keeps serving', async (t) => {
  const { dir, manifest } = await fixture(t);
  const hosts = path.join(dir, 'no-such-dir', 'hosts');
  const proxy = spawnNode([CLI, '--manifests', manifest, '--service-ip-pool', '127.219.21.0/24', '--hosts-file', hosts, '--healthz-bind-address=', '--metrics-bind-address=', '--log-format', 'json']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  await waitFor('the error line', () => proxy.stderr().includes('cannot write hosts file'), START_TIMEOUT_MS);
  const opened = await waitFor('the listener', () => /"addresses":"(127\.219\.21\.\d+):8080".*"message":"opened listener"/.exec(proxy.stderr())?.[1], START_TIMEOUT_MS);
  const { stdout } = await run('curl', ['-sS', '--max-time', '5', `http://${opened}:8080/still-serving`]);
  t.is(stdout, 'still-serving');
  t.is(
    proxy
      .stderr()
      .split('\n')
      .filter((l) => l.includes('cannot write hosts file')).length,
    1,
  );
  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
});

test('refused flags: --service-ip-pool outside 127/8 or with --redirect iptables, one line each, exit 2', async (t) => {
  const p = spawnNode([CLI, '--manifests', 'x', '--service-ip-pool', '10.0.0.0/16']);
  t.is(await p.exited, 2);
  t.regex(p.stderr(), /kube-userspace-proxy: --service-ip-pool: "10\.0\.0\.0\/16" is not inside 127\.0\.0\.0\/8/);
  const q = spawnNode([CLI, '--manifests', 'x', '--service-ip-pool', '127.1.0.0/16', '--redirect', 'iptables']);
  t.is(await q.exited, 2);
  t.regex(q.stderr(), /kube-userspace-proxy: --service-ip-pool: only with --redirect none/);
});

/**
 * --cleanup also removes rules and addresses of the network namespace it runs in: it runs in a new,
 * empty one here (unshare -n, root), so that nothing of this machine's is touched.
 */
const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;
const mustRun = process.env['CI'] === 'true';
const netTest = canUnshare || mustRun ? test : test.skip;
if (!canUnshare && !mustRun) test('--cleanup: skipped (needs unshare -n: root); with CI=true it runs', (t) => t.log('skipped'));

netTest('--cleanup removes the block a killed run left, and nothing else', async (t) => {
  // A loopback ClusterIP: without a pool the listener binds it (a ClusterIP not on this machine would mean *:8080).
  const { hosts, manifest } = await fixture(t, '127.219.22.1');
  const proxy = spawnNode([CLI, '--manifests', manifest, '--hosts-file', hosts, '--healthz-bind-address=', '--metrics-bind-address=']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  t.is(await waitFor('the hosts block', () => blockAddress(hosts), START_TIMEOUT_MS), '127.219.22.1', 'without a pool: the ClusterIP');
  proxy.child.kill('SIGKILL');
  await proxy.exited;
  t.truthy(await blockAddress(hosts), 'SIGKILL leaves the block');
  const cleanup = spawnSync('unshare', ['-n', process.execPath, CLI, '--cleanup', '--hosts-file', hosts, '--log-format', 'json'], { encoding: 'utf8' });
  t.is(cleanup.status, 0, cleanup.stderr);
  t.regex(cleanup.stderr, /"message":"cleanup done".*hosts block in /);
  t.is(await readFile(hosts, 'utf8'), HOSTS);
});
