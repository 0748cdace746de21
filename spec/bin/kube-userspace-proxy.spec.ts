import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml } from '../helpers/agent-fixture.js';
import { httpPathEcho, tcpConnects, tcpEcho, udpEcho, udpRequest } from '../helpers/backends.js';
import { request } from 'undici';
import { CLI, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
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
    [
      ...pods.map((p, i) => sliceYaml('web', `web-${i}`, [{ name: 'http', port: p.port }], [{ ip: p.host }])),
      sliceYaml('web', 'web-udp', [{ name: 'dns', port: udp.port, protocol: 'UDP' }], [{ ip: udp.host }]),
    ].join('---\n'),
  );
  const proxy = spawnNode([CLI, '--manifests', dir, '--log-format', 'json']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));

  await waitFor('proxy answering', () => httpGet(`http://${ip(1)}:8080/ready`).then((r) => r.body === 'ready'), START_TIMEOUT_MS);
  const names = new Set<string>();
  for (let i = 0; i < 3; i++) names.add((await httpGet(`http://${ip(1)}:8080/hello`)).backend);
  t.deepEqual([...names].sort(), ['pod-a', 'pod-b', 'pod-c']);
  t.is((await udpRequest(ip(1), 8053, 'q')).toString(), 'udp-pod');

  const lines = proxy
    .stderr()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(
    lines.some((l) => l['message'] === 'opened listener' && l['service'] === 'default/web:http'),
    'JSON logs with structured fields',
  );

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

test('SIGTERM drains: new connections are refused, a long transfer finishes, then the process exits 0', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A slow endpoint: 30 chunks of 1 KiB, one every 50 ms after the first byte.
  const chunk = Buffer.alloc(1024, 'x');
  const slow = net.createServer((s) => {
    s.on('error', () => {});
    s.write('start\n');
    let sent = 0;
    const timer = setInterval(() => {
      if (s.destroyed) return clearInterval(timer);
      s.write(chunk);
      if (++sent === 30) {
        clearInterval(timer);
        s.end();
      }
    }, 50);
  });
  await new Promise<void>((resolve) => slow.listen({ host: ip(120), port: 0 }, resolve));
  t.teardown(() => new Promise<void>((resolve) => slow.close(() => resolve())));
  const port = (slow.address() as net.AddressInfo).port;
  await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('slow', ip(2), [{ name: 'p', port: 9000 }]));
  await writeFile(path.join(dir, 'eps.yaml'), sliceYaml('slow', 'slow-0', [{ name: 'p', port }], [{ ip: ip(120) }]));
  const proxy = spawnNode([CLI, '--manifests', dir, '--shutdown-grace-period', '20s', '--healthz-bind-address=', '--metrics-bind-address=']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  await waitFor('proxy listening', () => tcpConnects(ip(2), 9000), START_TIMEOUT_MS);

  let received = 0;
  let ended = false;
  const client = net.connect({ host: ip(2), port: 9000 });
  client.on('data', (d: Buffer) => (received += d.length));
  client.on('end', () => (ended = true));
  await waitFor('transfer started', () => received > 0);
  proxy.child.kill('SIGTERM');
  await waitFor('new connections refused while draining', async () => !(await tcpConnects(ip(2), 9000)));
  t.false(ended, 'the transfer was still running when the listener closed');
  await waitFor('transfer complete', () => ended, 10_000);
  t.is(received, 'start\n'.length + 30 * 1024);
  t.is(await proxy.exited, 0);
});

test('a second signal exits at once', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const echo = await tcpEcho(ip(121));
  t.teardown(() => echo.close());
  await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('e', ip(3), [{ name: 'p', port: 9000 }]));
  await writeFile(path.join(dir, 'eps.yaml'), sliceYaml('e', 'e-0', [{ name: 'p', port: echo.port }], [{ ip: ip(121) }]));
  const proxy = spawnNode([CLI, '--manifests', dir, '--shutdown-grace-period', '60s', '--healthz-bind-address=', '--metrics-bind-address=']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  await waitFor('proxy listening', () => tcpConnects(ip(3), 9000), START_TIMEOUT_MS);
  const idle = net.connect({ host: ip(3), port: 9000 });
  idle.on('error', () => {});
  t.teardown(() => void idle.destroy());
  let echoed = '';
  idle.on('data', (d: Buffer) => (echoed += d.toString()));
  idle.write('ping');
  await waitFor('connection proxied', () => echoed === 'ping');
  proxy.child.kill('SIGTERM');
  await waitFor('draining', () => proxy.stderr().includes('draining'));
  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 1);
  t.regex(proxy.stderr(), /second signal: exiting now/);
});

test('health, metrics and the status view of a running agent, as a user reaches them', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const pod = await httpPathEcho(ip(130), 0, 'pod-a');
  t.teardown(() => pod.close());
  await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('web', ip(4), [{ name: 'http', port: 8080 }]));
  await writeFile(path.join(dir, 'eps.yaml'), sliceYaml('web', 'web-0', [{ name: 'http', port: pod.port }], [{ ip: pod.host }]));
  const proxy = spawnNode([CLI, '--manifests', dir, '--healthz-bind-address', '127.0.0.1:0', '--metrics-bind-address', '127.0.0.1:0', '--log-format', 'json']);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  const servers = await waitFor(
    'both servers serving',
    () => {
      const found = new Map<string, string>();
      for (const line of proxy.stderr().split('\n')) {
        if (!line.includes('"serving"')) continue;
        const l = JSON.parse(line) as { server: string; address: string };
        found.set(l.server, l.address);
      }
      return found.size === 2 ? found : undefined;
    },
    START_TIMEOUT_MS,
  );
  const healthUrl = servers.get('healthz')!;
  const metricsUrl = servers.get('metrics')!;
  await waitFor('healthy', async () => (await request(`${healthUrl}/healthz`)).statusCode === 200, START_TIMEOUT_MS);
  for (let i = 0; i < 3; i++) t.is((await httpGet(`http://${ip(4)}:8080/x`)).body, 'x');

  const health = await request(`${healthUrl}/healthz`);
  t.is(health.statusCode, 200);
  t.truthy(((await health.body.json()) as { lastUpdated: string }).lastUpdated);
  t.is(await (await request(`${metricsUrl}/proxyMode`)).body.text(), 'userspace');
  const metrics = await (await request(`${metricsUrl}/metrics`)).body.text();
  t.regex(metrics, /kube_userspace_proxy_connections_total\{namespace="default",service="web",port="http",protocol="TCP"\} 3/);
  // kube-proxy's metrics beside them; the /healthz requests above went to the health server and are counted.
  t.regex(metrics, /^kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} [1-9]/m);
  t.regex(metrics, /^kubeproxy_sync_proxy_rules_service_changes_total [1-9]/m);
  t.regex(metrics, /^kubeproxy_proxy_healthz_total\{code="200"\} [1-9]/m);

  const status = spawnNode([CLI, 'status', '--metrics-address', new URL(metricsUrl).host]);
  t.is(await status.exited, 0, status.stderr());
  t.regex(status.stdout(), /TCP\s+default\/web:http/);
  t.regex(status.stdout(), new RegExp(`-> ${pod.host.replace(/\./g, '\\.')}:${pod.port}\\s+\\d+\\s+3\\s+0`));
  const json = spawnNode([CLI, 'status', '--metrics-address', new URL(metricsUrl).host, '--output', 'json']);
  t.is(await json.exited, 0);
  t.truthy(JSON.parse(json.stdout()));
  proxy.child.kill('SIGTERM');
  t.is(await proxy.exited, 0);
});
