import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { request } from 'undici';
import { Agent } from '../../lib/agent/agent.js';
import { RoundRobinBalancer } from '../../lib/balancer/round-robin-balancer.js';
import type { RuleBackend, ServicePortRules } from '../../lib/rules/rule-backend.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import { freePort, httpPathEcho, tcpConnects, tcpEcho, tcpName, tcpRefused, udpEcho, udpRequest, tcpRequest } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../helpers/agent-fixture.js';
import { waitFor } from '../helpers/wait-for.js';

// Each test gets its own 127.77.<block>.x addresses, so service ports never collide across tests.
const blocks = { next: 40 };
function addresses(): (host: number) => string {
  return loopbackBlock(blocks.next++);
}

async function backend<T extends Backend>(t: { teardown(fn: () => Promise<void>): void }, b: Promise<T>): Promise<T> {
  const started = await b;
  t.teardown(() => started.close());
  return started;
}

function slicesFor(service: string, backends: Array<{ host: string; tcp?: number; udp?: number }>, names = { tcp: 'p', udp: 'q' }): string {
  return backends
    .map((b, i) => {
      const ports = [];
      if (b.tcp) ports.push({ name: names.tcp, port: b.tcp, protocol: 'TCP' });
      if (b.udp) ports.push({ name: names.udp, port: b.udp, protocol: 'UDP' });
      return sliceYaml(service, `${service}-${i}`, ports, [{ ip: b.host }]);
    })
    .join('---\n');
}

async function get(host: string, port: number, path: string): Promise<string> {
  const res = await request(`http://${host}:${port}${path}`, { reset: true });
  return res.body.text();
}

test('TCP and UDP ports of one service both proxy (multi-port); an undeclared port is not opened', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const udp = await backend(t, udpEcho(ip(101)));
  const { agent } = await startAgent(t, {
    'svc.yaml': serviceYaml('echo', ip(1), [
      { name: 'p', port: 8080 },
      { name: 'q', port: 8081, protocol: 'UDP' },
    ]),
    'eps.yaml': slicesFor('echo', [{ host: ip(101), tcp: http.port, udp: udp.port }]),
  });
  t.is(await get(ip(1), 8080, '/aaaaa'), 'aaaaa');
  t.is((await udpRequest(ip(1), 8081, 'abc123')).toString(), 'abc123');
  t.deepEqual(
    agent
      .status()
      .map((s) => s.spn)
      .sort(),
    ['default/echo:p', 'default/echo:q'],
  );
  t.true(await tcpRefused(ip(1), 8082));
});

test('deleting the service closes its ports; re-adding it restores them (update-delete-update)', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const udp = await backend(t, udpEcho(ip(101)));
  const svc = serviceYaml('echo', ip(1), [
    { name: 'p', port: 9997 },
    { name: 'q', port: 9998, protocol: 'UDP' },
  ]);
  const f = await startAgent(t, { 'svc.yaml': svc, 'eps.yaml': slicesFor('echo', [{ host: ip(101), tcp: http.port, udp: udp.port }]) });
  t.is(await get(ip(1), 9997, '/x'), 'x');
  await f.remove('svc.yaml');
  await waitFor('TCP port closed', () => tcpRefused(ip(1), 9997));
  await waitFor('UDP port gone from status', () => f.agent.status().length === 0);
  await t.throwsAsync(udpRequest(ip(1), 9998, 'gone', 300));
  await f.write('svc.yaml', svc);
  await waitFor('TCP port back', async () => (await get(ip(1), 9997, '/back')) === 'back');
  t.is((await udpRequest(ip(1), 9998, 'again')).toString(), 'again');
});

test('changing a port number moves the listener (update port, TCP and UDP)', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const udp = await backend(t, udpEcho(ip(101)));
  const eps = slicesFor('echo', [{ host: ip(101), tcp: http.port, udp: udp.port }]);
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('echo', ip(1), [
      { name: 'p', port: 9099 },
      { name: 'q', port: 9199, protocol: 'UDP' },
    ]),
    'eps.yaml': eps,
  });
  t.is(await get(ip(1), 9099, '/old'), 'old');
  await f.write(
    'svc.yaml',
    serviceYaml('echo', ip(1), [
      { name: 'p', port: 9100 },
      { name: 'q', port: 9200, protocol: 'UDP' },
    ]),
  );
  await waitFor('old TCP port closed', () => tcpRefused(ip(1), 9099));
  t.is(await get(ip(1), 9100, '/new'), 'new');
  t.is((await udpRequest(ip(1), 9200, 'new-udp')).toString(), 'new-udp');
  await t.throwsAsync(udpRequest(ip(1), 9199, 'old-udp', 300));
});

test('adding an externalIP opens it too and keeps serving the cluster IP', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const eps = slicesFor('echo', [{ host: ip(101), tcp: http.port }]);
  const f = await startAgent(t, { 'svc.yaml': serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]), 'eps.yaml': eps });
  await f.write('svc.yaml', serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }], { externalIPs: [ip(2)] }));
  await waitFor('externalIP answers', async () => (await get(ip(2), 8080, '/ext').catch(() => '')) === 'ext');
  t.is(await get(ip(1), 8080, '/cip'), 'cip');
});

test('cluster IP "" removes the service, "None" keeps it out, a real IP restores it (update portal)', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]),
    'eps.yaml': slicesFor('echo', [{ host: ip(101), tcp: http.port }]),
  });
  t.is(await get(ip(1), 8080, '/a'), 'a');
  await f.write('svc.yaml', serviceYaml('echo', '', [{ name: 'p', port: 8080 }]));
  await waitFor('removed', () => f.agent.status().length === 0);
  t.true(await tcpRefused(ip(1), 8080));
  await f.write('svc.yaml', serviceYaml('echo', 'None', [{ name: 'p', port: 8080 }]));
  await f.agent.settled();
  t.is(f.agent.status().length, 0);
  await f.write('svc.yaml', serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]));
  await waitFor('restored', async () => (await get(ip(1), 8080, '/b').catch(() => '')) === 'b');
});

test('a live edit that adds a port keeps the established connection of an unchanged port', async (t) => {
  const ip = addresses();
  const echo = await backend(t, tcpEcho(ip(101)));
  const eps = (ports: Array<{ name: string; port: number }>) => sliceYaml('echo', 'echo-0', ports, [{ ip: ip(101) }]);
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('echo', ip(1), [{ name: 'p', port: 7000 }]),
    'eps.yaml': eps([{ name: 'p', port: echo.port }]),
  });
  const conn = net.connect({ host: ip(1), port: 7000 });
  t.teardown(() => void conn.destroy());
  const received: Buffer[] = [];
  conn.on('data', (d: Buffer) => received.push(d));
  await new Promise<void>((resolve, reject) => conn.once('connect', resolve).once('error', reject));
  conn.write('before;');
  await waitFor('first echo', () => Buffer.concat(received).toString() === 'before;');

  await f.write(
    'svc.yaml',
    serviceYaml('echo', ip(1), [
      { name: 'p', port: 7000 },
      { name: 'r', port: 7001 },
    ]),
  );
  await f.write(
    'eps.yaml',
    eps([
      { name: 'p', port: echo.port },
      { name: 'r', port: echo.port },
    ]),
  );
  await waitFor('new port answers', async () => (await tcpRequest(ip(1), 7001, 'new').catch(() => Buffer.alloc(0))).toString() === 'new');
  conn.write('after');
  await waitFor('old connection still echoes', () => Buffer.concat(received).toString() === 'before;after');
  t.false(conn.destroyed);
});

test('an endpoint-only change reaches the balancer without touching the listener', async (t) => {
  const ip = addresses();
  const a = await backend(t, tcpName('a', ip(101)));
  const b = await backend(t, tcpName('b', ip(102)));
  const echo = await backend(t, tcpEcho(ip(103)));
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('names', ip(1), [{ name: 'p', port: 7000 }]),
    'eps.yaml': sliceYaml('names', 'names-0', [{ name: 'p', port: echo.port }], [{ ip: ip(103) }]),
  });
  const conn = net.connect({ host: ip(1), port: 7000 });
  t.teardown(() => void conn.destroy());
  let got = '';
  conn.on('data', (d: Buffer) => (got += d.toString()));
  await new Promise<void>((resolve) => conn.once('connect', resolve));
  const listenersBefore = f.agent.status()[0]!.listening;
  await f.write(
    'eps.yaml',
    [sliceYaml('names', 'names-a', [{ name: 'p', port: a.port }], [{ ip: ip(101) }]), sliceYaml('names', 'names-b', [{ name: 'p', port: b.port }], [{ ip: ip(102) }])].join('---\n'),
  );
  await waitFor('both new endpoints used', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await tcpRequest(ip(1), 7000, 'x')).toString());
    return seen.has('a') && seen.has('b') && !seen.has('x');
  });
  t.deepEqual(f.agent.status()[0]!.listening, listenersBefore);
  conn.write('still here');
  await waitFor('established connection unaffected', () => got === 'still here');
});

test('a bad edit is rejected and the last good state keeps serving', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const good = serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]);
  const f = await startAgent(t, { 'svc.yaml': good, 'eps.yaml': slicesFor('echo', [{ host: ip(101), tcp: http.port }]) });
  await f.write('svc.yaml', good.replace('port: 8080', 'port: 99999'));
  await f.write('other.yaml', serviceYaml('other', ip(2), [{ name: 'p', port: 8080 }]));
  await waitFor('a later good file still applies', () => f.agent.status().some((s) => s.spn === 'default/other:p'));
  t.is(await get(ip(1), 8080, '/kept'), 'kept');
});

test('a port conflict affects only that service port, and it opens once the port is free', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ host: ip(1), port: 8080 }, resolve));
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('echo', ip(1), [
      { name: 'p', port: 8080 },
      { name: 'r', port: 8081 },
    ]),
    'eps.yaml': sliceYaml(
      'echo',
      'e',
      [
        { name: 'p', port: http.port },
        { name: 'r', port: http.port },
      ],
      [{ ip: ip(101) }],
    ),
  });
  const p = f.agent.status().find((s) => s.spn === 'default/echo:p')!;
  t.regex(p.error ?? '', /port conflict: 127\.77\.\d+\.1:8080 is already in use/);
  t.is(await get(ip(1), 8081, '/other'), 'other');
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  await waitFor('conflicted port opens at a later sync', async () => (await get(ip(1), 8080, '/free').catch(() => '')) === 'free');
});

test('SCTP ports are skipped, headless and ExternalName services are not proxied', async (t) => {
  const ip = addresses();
  const http = await backend(t, httpPathEcho(ip(101)));
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('mixed', ip(1), [
      { name: 'p', port: 8080 },
      { name: 's', port: 8082, protocol: 'SCTP' },
    ]),
    'headless.yaml': serviceYaml('headless', 'None', [{ name: 'p', port: 8080 }]),
    'eps.yaml': sliceYaml('mixed', 'm', [{ name: 'p', port: http.port }], [{ ip: ip(101) }]),
  });
  t.deepEqual(
    f.agent.status().map((s) => s.spn),
    ['default/mixed:p'],
  );
  t.is(await get(ip(1), 8080, '/ok'), 'ok');
});

test('with no ready endpoint, serving and terminating endpoints are used; with none at all, the port is not listened on and refuses', async (t) => {
  const ip = addresses();
  const a = await backend(t, tcpName('terminating', ip(101)));
  const f = await startAgent(t, {
    'svc.yaml': serviceYaml('t', ip(1), [{ name: 'p', port: 7000 }]),
    'eps.yaml': sliceYaml('t', 't-0', [{ name: 'p', port: a.port }], [{ ip: ip(101), ready: false, serving: true, terminating: true }]),
  });
  t.is((await tcpRequest(ip(1), 7000)).toString(), 'terminating');
  await f.write('eps.yaml', sliceYaml('t', 't-0', [{ name: 'p', port: a.port }], [{ ip: ip(101), ready: false, serving: false, terminating: true }]));
  await waitFor('the listener closed', () => f.agent.status()[0]!.endpoints.length === 0 && f.agent.status()[0]!.listening.length === 0);
  const refused = await t.throwsAsync(tcpRequest(ip(1), 7000));
  t.is((refused as NodeJS.ErrnoException).code, 'ECONNREFUSED', 'refused by the kernel, not accepted then closed');
  t.is(f.agent.status()[0]!.error, undefined, 'no endpoints is not a failure to open');
  t.true(f.agent.health().healthy, f.agent.health().reasons.join('; '));
  await f.write('eps.yaml', sliceYaml('t', 't-0', [{ name: 'p', port: a.port }], [{ ip: ip(101) }]));
  t.is(await waitFor('serving again', async () => (await tcpRequest(ip(1), 7000)).toString()), 'terminating');
});

test('ClientIP affinity: a client sticks to one endpoint until that endpoint goes', async (t) => {
  const ip = addresses();
  const a = await backend(t, tcpName('a', ip(101)));
  const b = await backend(t, tcpName('b', ip(102)));
  const both = [sliceYaml('s', 's-a', [{ name: 'p', port: a.port }], [{ ip: ip(101) }]), sliceYaml('s', 's-b', [{ name: 'p', port: b.port }], [{ ip: ip(102) }])].join('---\n');
  const f = await startAgent(t, { 'svc.yaml': serviceYaml('s', ip(1), [{ name: 'p', port: 7000 }], { affinityTimeout: 600 }), 'eps.yaml': both });
  const first = (await tcpRequest(ip(1), 7000)).toString();
  for (let i = 0; i < 5; i++) t.is((await tcpRequest(ip(1), 7000)).toString(), first);
  const remaining = first === 'a' ? 'b' : 'a';
  const keep = remaining === 'a' ? sliceYaml('s', 's-a', [{ name: 'p', port: a.port }], [{ ip: ip(101) }]) : sliceYaml('s', 's-b', [{ name: 'p', port: b.port }], [{ ip: ip(102) }]);
  await f.write('eps.yaml', keep);
  await waitFor('one endpoint left', () => f.agent.status()[0]!.endpoints.length === 1);
  for (let i = 0; i < 3; i++) t.is((await tcpRequest(ip(1), 7000)).toString(), remaining);
});

test('the ClientIP affinity timeout from the Service is honoured on the data path', async (t) => {
  const ip = addresses();
  const a = await backend(t, tcpName('a', ip(101)));
  const b = await backend(t, tcpName('b', ip(102)));
  let now = 1_000_000;
  const balancer = new RoundRobinBalancer({ now: () => now });
  const eps = [sliceYaml('s', 's-a', [{ name: 'p', port: a.port }], [{ ip: ip(101) }]), sliceYaml('s', 's-b', [{ name: 'p', port: b.port }], [{ ip: ip(102) }])].join('---\n');
  await startAgent(t, { 'svc.yaml': serviceYaml('s', ip(1), [{ name: 'p', port: 7000 }], { affinityTimeout: 5 }), 'eps.yaml': eps }, {}, balancer);
  const first = (await tcpRequest(ip(1), 7000)).toString();
  now += 4_999;
  t.is((await tcpRequest(ip(1), 7000)).toString(), first, 'still pinned just before the timeout');
  now += 5_000;
  t.not((await tcpRequest(ip(1), 7000)).toString(), first, 'round robin again once the pin expired');
});

test('internalTrafficPolicy Local uses only the endpoints on this node', async (t) => {
  const ip = addresses();
  const here = await backend(t, tcpName('here', ip(101)));
  const there = await backend(t, tcpName('there', ip(102)));
  const eps = [
    sliceYaml('s', 's-a', [{ name: 'p', port: here.port }], [{ ip: ip(101), nodeName: 'node-a' }]),
    sliceYaml('s', 's-b', [{ name: 'p', port: there.port }], [{ ip: ip(102), nodeName: 'node-b' }]),
  ].join('---\n');
  const f = await startAgent(t, { 'svc.yaml': serviceYaml('s', ip(1), [{ name: 'p', port: 7000 }], { internalTrafficPolicy: 'Local' }), 'eps.yaml': eps }, { nodeName: 'node-a' });
  for (let i = 0; i < 4; i++) t.is((await tcpRequest(ip(1), 7000)).toString(), 'here');
  t.deepEqual(f.agent.status()[0]!.endpoints, [`${ip(101)}:${here.port}`]);
});

test('externalTrafficPolicy Local: the NodePort uses local endpoints while the cluster IP uses all', async (t) => {
  const ip = addresses();
  const here = await backend(t, tcpName('here', ip(101)));
  const there = await backend(t, tcpName('there', ip(102)));
  const nodePort = await freePort();
  const eps = [
    sliceYaml('s', 's-a', [{ name: 'p', port: here.port }], [{ ip: ip(101), nodeName: 'node-a' }]),
    sliceYaml('s', 's-b', [{ name: 'p', port: there.port }], [{ ip: ip(102), nodeName: 'node-b' }]),
  ].join('---\n');
  const f = await startAgent(
    t,
    { 'svc.yaml': serviceYaml('s', ip(1), [{ name: 'p', port: 7000, nodePort }], { type: 'NodePort', externalTrafficPolicy: 'Local' }), 'eps.yaml': eps },
    { nodeName: 'node-a', nodePortAddresses: ['127.0.0.1/32'] },
  );
  t.deepEqual(
    f.agent
      .status()
      .map((s) => s.spn)
      .sort(),
    ['default/s:p (external)', 'default/s:p (internal)'],
  );
  const internal = new Set<string>();
  for (let i = 0; i < 4; i++) internal.add((await tcpRequest(ip(1), 7000)).toString());
  t.deepEqual([...internal].sort(), ['here', 'there']);
  for (let i = 0; i < 4; i++) t.is((await tcpRequest('127.0.0.1', nodePort)).toString(), 'here');
});

test("a dual-stack service has a socket per family, each balancing over its own family's endpoints", async (t) => {
  const ip = addresses();
  const v6 = await backend(t, tcpName('v6-pod', '::1'));
  const v4 = await backend(t, tcpName('v4-pod', ip(101)));
  const port = await freePort('::1');
  const svc = serviceYaml('dual', ip(1), [{ name: 'p', port }]).replace(
    `  clusterIP: "${ip(1)}"`,
    `  clusterIP: "${ip(1)}"\n  clusterIPs: ["${ip(1)}", "::1"]\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack`,
  );
  const slice6 = sliceYaml('dual', 'dual-v6', [{ name: 'p', port: v6.port }], [{ ip: '::1' }]).replace('addressType: IPv4', 'addressType: IPv6');
  const f = await startAgent(t, { 'svc.yaml': svc, 'eps.yaml': slice6 });
  const byKey = (): Record<string, { listening: string[]; endpoints: readonly string[]; portals: readonly string[] }> =>
    Object.fromEntries(f.agent.status().map((s) => [s.spn, { listening: s.listening.map((a) => a.host), endpoints: s.endpoints, portals: s.portals }]));
  t.deepEqual(byKey(), {
    'default/dual:p (IPv4)': { listening: [], endpoints: [], portals: [`${ip(1)}:${port}`] },
    'default/dual:p (IPv6)': { listening: ['::1'], endpoints: [`[::1]:${v6.port}`], portals: [`[::1]:${port}`] },
  });
  t.is((await tcpRequest('::1', port)).toString(), 'v6-pod');
  const refused = await t.throwsAsync(tcpRequest(ip(1), port));
  t.is((refused as NodeJS.ErrnoException).code, 'ECONNREFUSED', 'the IPv4 portal has no IPv4 endpoint: refused, never sent to the IPv6 pod');

  await f.write('eps4.yaml', sliceYaml('dual', 'dual-v4', [{ name: 'p', port: v4.port }], [{ ip: ip(101) }]));
  await waitFor('the IPv4 socket open', () => byKey()['default/dual:p (IPv4)']!.listening.length === 1);
  for (let i = 0; i < 3; i++) {
    t.is((await tcpRequest(ip(1), port)).toString(), 'v4-pod');
    t.is((await tcpRequest('::1', port)).toString(), 'v6-pod');
  }
});

test('rules modes hold each NodePort open; a NodePort taken by another process is one clear error and the rest still works', async (t) => {
  const ip = addresses();
  const pod = await backend(t, tcpName('pod', ip(101)));
  const taken = await freePort('0.0.0.0');
  const free = await freePort('0.0.0.0');
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ host: '0.0.0.0', port: taken }, resolve));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  // A RuleBackend that records what it is asked to install: this test is about the sockets.
  const synced: ServicePortRules[][] = [];
  const rules: RuleBackend = {
    mode: 'iptables',
    start: async () => {},
    sync: async (r) => void synced.push([...r]),
    render: () => '',
    close: async () => {},
  };
  const svc = serviceYaml(
    'np',
    ip(1),
    [
      { name: 'a', port: 7000, nodePort: taken },
      { name: 'b', port: 7001, nodePort: free },
    ],
    { type: 'NodePort' },
  );
  const eps = sliceYaml(
    'np',
    'np-0',
    [
      { name: 'a', port: pod.port },
      { name: 'b', port: pod.port },
    ],
    [{ ip: ip(101) }],
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-np-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'svc.yaml'), svc);
  await writeFile(path.join(dir, 'eps.yaml'), eps);
  const agent = new Agent({
    config: { bindAddress: '0.0.0.0', udpTimeoutMs: 30_000, udpMaxSessions: 10, syncPeriodMs: 60_000, minSyncPeriodMs: 0 },
    source: new ManifestSource({ paths: [dir] }),
    rules,
  });
  t.teardown(() => agent.destroy());
  await agent.start();
  const a = agent.status().find((s) => s.spn === 'default/np:a')!;
  t.regex(a.error ?? '', new RegExp(`port conflict: 0\\.0\\.0\\.0:${taken} is already in use`));
  t.true(await tcpConnects('127.0.0.1', free), 'the free NodePort is held by the agent');
  const last = synced.at(-1)!;
  t.is(last.find((r) => r.spn === 'default/np:a')!.nodePort, 0, 'no NodePort rule for a port the agent does not hold');
  t.is(last.find((r) => r.spn === 'default/np:b')!.nodePort, free);
  t.false(agent.health().healthy);
});
