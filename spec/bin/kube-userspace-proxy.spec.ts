import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { httpPathEcho, udpEcho, udpRequest } from '../helpers/backends.js';
import { request } from 'undici';
import { CLI, spawnNode } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

const ip = loopbackBlock(60);

test('a bad flag prints what is wrong and the usage, exit code 2', async (t) => {
  const p = spawnNode([CLI, '--bogus', '--udp-timeout', 'soon']);
  t.is(await p.exited, 2);
  t.regex(p.stderr(), /kube-userspace-proxy: unknown flag --bogus/);
  t.regex(p.stderr(), /kube-userspace-proxy: --udp-timeout: "soon" is not a duration/);
  t.regex(p.stderr(), /Usage: kube-userspace-proxy --manifests PATH/);
});

test('--version and --help exit 0', async (t) => {
  const v = spawnNode([CLI, '--version']);
  t.is(await v.exited, 0);
  t.regex(v.stdout(), /^kube-userspace-proxy \d+\.\d+\.\d+\n$/);
  const h = spawnNode([CLI, '--help']);
  t.is(await h.exited, 0);
  t.regex(h.stdout(), /--manifests PATH/);
});

test('a missing manifest path fails at start with one clear line, exit code 1', async (t) => {
  const p = spawnNode([CLI, '--manifests', '/nonexistent/kup-manifests', '--log-format', 'text']);
  t.is(await p.exited, 1);
  t.regex(p.stderr(), /start failed.*\/nonexistent\/kup-manifests/);
});

test('serves manifests as a user runs it, balances across pods, and SIGTERM exits 0 closing the ports', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pods = await Promise.all(['pod-a', 'pod-b', 'pod-c'].map((n, i) => httpPathEcho(ip(101 + i), 0, n)));
  const udp = await udpEcho(ip(110), 0, 'udp-pod');
  t.teardown(async () => {
    await Promise.all(pods.map((p) => p.close()));
    await udp.close();
  });
  await writeFile(
    path.join(dir, 'svc.yaml'),
    serviceYaml('web', ip(1), [
      { name: 'http', port: 8080 },
      { name: 'dns', port: 8053, protocol: 'UDP' },
    ]),
  );
  await writeFile(
    path.join(dir, 'eps.yaml'),
    [...pods.map((p, i) => sliceYaml('web', `web-${i}`, [{ name: 'http', port: p.port }], [{ ip: p.host }])), sliceYaml('web', 'web-udp', [{ name: 'dns', port: udp.port, protocol: 'UDP' }], [{ ip: udp.host }])].join('---\n'),
  );
  const proxy = spawnNode([CLI, '--manifests', dir, '--log-format', 'json']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));

  await waitFor('proxy answering', () => httpGet(`http://${ip(1)}:8080/ready`).then((r) => r.body === 'ready'), 10_000);
  const names = new Set<string>();
  for (let i = 0; i < 3; i++) names.add((await httpGet(`http://${ip(1)}:8080/hello`)).backend);
  t.deepEqual([...names].sort(), ['pod-a', 'pod-b', 'pod-c']);
  t.is((await udpRequest(ip(1), 8053, 'q')).toString(), 'udp-pod');

  const lines = proxy.stderr().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(lines.some((l) => l['message'] === 'opened listener' && l['service'] === 'default/web:http'), 'JSON logs with structured fields');

  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
  await t.throwsAsync(tcpText(ip(1), 8080));
});

async function httpGet(url: string): Promise<{ body: string; backend: string }> {
  const res = await request(url, { reset: true });
  return { body: await res.body.text(), backend: String(res.headers['x-backend']) };
}

function tcpText(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = net.connect({ host, port });
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}
