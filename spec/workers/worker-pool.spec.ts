import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../lib/proxy/endpoint-backoff.js';
import { WorkerPool } from '../../lib/workers/worker-pool.js';
import { closeAll, connectUntilOwnedBy, echoConnection } from '../helpers/echo-connections.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../helpers/agent-fixture.js';
import type { AgentFixture } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRefused, tcpRequest, udpEcho } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { CLI, spawnNode, START_TIMEOUT_MS } from '../helpers/process.js';
import { socketOwners } from '../helpers/socket-owners.js';
import { waitFor } from '../helpers/wait-for.js';

// Addresses 127.77.90-99.x belong to this file.
const blocks = { next: 90 };

async function backend<T extends Backend>(t: ExecutionContext, b: Promise<T>): Promise<T> {
  const started = await b;
  t.teardown(() => started.close());
  return started;
}

async function pool(t: ExecutionContext, workers = 1): Promise<WorkerPool> {
  const p = new WorkerPool({ workers, logLevel: 'warn', logFormat: 'json', restartDelayMs: 50 });
  t.teardown(() => p.destroy());
  return p;
}

/** An agent with `workers` workers and one service, ip(1):8080, in front of a TCP echo server on ip(101). */
/** A TCP proxy socket of the pool's with no affinity, on one address. */
function tcpPort(workers: WorkerPool, spn: ReturnType<typeof servicePortName>, listen: { host: string; port: number }, backoff: EndpointBackoff): ReturnType<WorkerPool['create']> {
  return workers.create({ spn, protocol: 'TCP', listen: [listen], affinity: 'None', balancer: workers.balancer, backoff, udpTimeoutMs: 1000, udpMaxSessions: 10 });
}

async function echoService(t: ExecutionContext, ip: (host: number) => string, workerCount = 1): Promise<AgentFixture & { echo: Backend; workers: WorkerPool }> {
  const echo = await backend(t, tcpEcho(ip(101)));
  const workers = await pool(t, workerCount);
  const fx = await startAgent(
    t,
    { 'svc.yaml': serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]), 'eps.yaml': sliceYaml('echo', 'echo-0', [{ name: 'p', port: echo.port }], [{ ip: ip(101) }]) },
    {},
    workers.balancer,
    workers,
  );
  return { ...fx, echo, workers };
}

test('TCP connections are accepted by this process and its worker; the counters are the exact sum of both', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const { echo, workers, agent } = await echoService(t, ip);
  const [workerPid] = workers.pids();
  t.truthy(workerPid);
  const conns = await connectUntilOwnedBy(t, ip(1), 8080, workerPid!);
  conns.push(...(await connectUntilOwnedBy(t, ip(1), 8080, process.pid)));
  const owners = new Set(socketOwners('tcp', ip(1), 8080));
  t.deepEqual([...owners].sort(), [process.pid, workerPid!].sort(), 'both processes hold accepted connections');

  await agent.refreshStats();
  const [open] = agent.status();
  t.is(open!.stats!.active, conns.length);
  await closeAll(conns);
  const stats = await waitFor('connections counted closed', async () => {
    await agent.refreshStats();
    const s = agent.status()[0]!.stats!;
    return s.active === 0 && s.bytesOut === conns.length ? s : undefined;
  });
  t.is(stats.total, conns.length);
  t.is(stats.bytesIn, conns.length);
  t.is(stats.endpoints.get(`${ip(101)}:${echo.port}`)?.total, conns.length);
});

test('ClientIP-affinity TCP ports stay in this process; turning affinity on moves a port back to it', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const a = await backend(t, tcpEcho(ip(101)));
  const b = await backend(t, tcpEcho(ip(102)));
  const echo = await backend(t, tcpEcho(ip(103)));
  const workers = await pool(t);
  const slices = [
    sliceYaml('sticky', 'sticky-a', [{ name: 'p', port: a.port }], [{ ip: ip(101) }]),
    sliceYaml('sticky', 'sticky-b', [{ name: 'p', port: b.port }], [{ ip: ip(102) }]),
    sliceYaml('plain', 'plain-0', [{ name: 'p', port: echo.port }], [{ ip: ip(103) }]),
  ].join('---\n');
  const fx = await startAgent(
    t,
    {
      'sticky.yaml': serviceYaml('sticky', ip(1), [{ name: 'p', port: 8080 }], { affinityTimeout: 60 }),
      'plain.yaml': serviceYaml('plain', ip(2), [{ name: 'p', port: 8080 }]),
      'eps.yaml': slices,
    },
    {},
    workers.balancer,
    workers,
  );
  // Affinity: every connection from this client reaches one endpoint, and this process accepted all.
  const sticky: net.Socket[] = [];
  for (let i = 0; i < 30; i++) sticky.push(await echoConnection(t, ip(1), 8080));
  t.deepEqual([a.count(), b.count()].sort(), [0, 30]);
  const owners = socketOwners('tcp', ip(1), 8080);
  t.is(owners.length, 30);
  t.deepEqual([...new Set(owners)], [process.pid]);
  await closeAll(sticky);

  // The plain port is shared; with affinity turned on it is reopened in this process alone.
  const [workerPid] = workers.pids();
  await closeAll(await connectUntilOwnedBy(t, ip(2), 8080, workerPid!));
  await fx.write('plain.yaml', serviceYaml('plain', ip(2), [{ name: 'p', port: 8080 }], { affinityTimeout: 60 }));
  await waitFor('affinity applied', () => fx.agent.status().find((s) => s.spn === 'default/plain:p')?.affinity.type === 'ClientIP');
  await fx.agent.settled();
  const conns: net.Socket[] = [];
  for (let i = 0; i < 30; i++) conns.push(await echoConnection(t, ip(2), 8080));
  const plainOwners = socketOwners('tcp', ip(2), 8080);
  t.is(plainOwners.length, 30);
  t.deepEqual([...new Set(plainOwners)], [process.pid]);
  await closeAll(conns);
});

/** A UDP client socket of its own (its own session), closed in teardown. */
async function udpClient(t: ExecutionContext, host: string): Promise<{ request(msg: string, port: number, to: string): Promise<string> }> {
  const sock = dgram.createSocket('udp4');
  t.teardown(() => new Promise<void>((resolve) => sock.close(() => resolve())));
  await new Promise<void>((resolve) => sock.bind(0, host, () => resolve()));
  return {
    request: (msg, port, to) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply to ${msg}`)), 3000);
        sock.once('message', (reply: Buffer) => {
          clearTimeout(timer);
          resolve(reply.toString());
        });
        sock.send(msg, port, to);
      }),
  };
}

test('UDP sessions are placed in this process and the worker in turn; each client keeps its endpoint; affinity and counters are exact', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const pods = [await backend(t, udpEcho(ip(101), 0, 'a')), await backend(t, udpEcho(ip(102), 0, 'b'))];
  const workers = await pool(t);
  const slices = pods.flatMap((p, i) => [
    sliceYaml('dns', `dns-${i}`, [{ name: 'q', port: p.port, protocol: 'UDP' }], [{ ip: p.host }]),
    sliceYaml('sticky', `sticky-${i}`, [{ name: 'q', port: p.port, protocol: 'UDP' }], [{ ip: p.host }]),
  ]);
  const { agent } = await startAgent(
    t,
    {
      'dns.yaml': serviceYaml('dns', ip(1), [{ name: 'q', port: 53, protocol: 'UDP' }]),
      'sticky.yaml': serviceYaml('sticky', ip(2), [{ name: 'q', port: 53, protocol: 'UDP' }], { affinityTimeout: 60 }),
      'eps.yaml': slices.join('---\n'),
    },
    {},
    workers.balancer,
    workers,
  );
  const [workerPid] = workers.pids();
  const clients = await Promise.all(Array.from({ length: 10 }, () => udpClient(t, '127.0.0.1')));
  // Round robin over two endpoints: a client that got a new session per datagram would alternate.
  const seen: string[] = [];
  for (const c of clients) {
    const replies = [await c.request('1', 53, ip(1)), await c.request('2', 53, ip(1)), await c.request('3', 53, ip(1))];
    t.is(new Set(replies).size, 1, 'one endpoint per client');
    seen.push(replies[0]!);
  }
  t.deepEqual([...new Set(seen)].sort(), ['a', 'b']);
  const owners = new Set(socketOwners('udp', ip(1), 53));
  t.deepEqual([...owners].sort(), [process.pid, workerPid!].sort(), 'sessions in both processes');

  await agent.refreshStats();
  const dns = agent.status().find((s) => s.spn === 'default/dns:q')!.stats!;
  t.is(dns.total, 10);
  t.is(dns.active, 10);
  t.is(dns.bytesIn, 30);
  t.is(dns.bytesOut, 30);

  // ClientIP: every client (all from 127.0.0.1) reaches the same endpoint, wherever its session is.
  const sticky = new Set<string>();
  for (const c of clients) sticky.add(await c.request('x', 53, ip(2)));
  t.is(sticky.size, 1);
  t.deepEqual([...new Set(socketOwners('udp', ip(2), 53))].sort(), [process.pid, workerPid!].sort());

  // The worker dies: its clients' next datagrams start new sessions and are answered.
  process.kill(workerPid!, 'SIGKILL');
  await waitFor(
    'worker started again',
    () => {
      const [pid] = workers.pids();
      return pid !== undefined && pid !== workerPid;
    },
    10_000,
  );
  for (const c of clients) t.true(['a', 'b'].includes(await c.request('again', 53, ip(1))));
});

test('a worker that dies is started again and serves; counters it reported are kept', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const { workers, agent } = await echoService(t, ip);
  const [first] = workers.pids();
  const before = await connectUntilOwnedBy(t, ip(1), 8080, first!);
  await closeAll(before);
  await waitFor('first round counted', async () => {
    await agent.refreshStats();
    const s = agent.status()[0]!.stats!;
    return s.active === 0 && s.total === before.length;
  });

  process.kill(first!, 'SIGKILL');
  const second = await waitFor(
    'worker started again',
    () => {
      const [pid] = workers.pids();
      return pid !== undefined && pid !== first ? pid : undefined;
    },
    10_000,
  );
  // The new worker has the listener and the endpoints: it proxies.
  const after = await connectUntilOwnedBy(t, ip(1), 8080, second);
  await closeAll(after);
  const stats = await waitFor('second round counted', async () => {
    await agent.refreshStats();
    const s = agent.status()[0]!.stats!;
    return s.active === 0 && s.total === before.length + after.length ? s : undefined;
  });
  t.is(stats.bytesIn, before.length + after.length);
});

test('removing a service closes its port in every process: it can be bound again at once', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const fx = await echoService(t, ip, 2);
  t.is((await tcpRequest(ip(1), 8080, 'hi')).toString(), 'hi');
  await fx.remove('svc.yaml');
  await waitFor('service removed', () => fx.agent.status().length === 0);
  await fx.agent.settled();
  t.true(await tcpRefused(ip(1), 8080));
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: ip(1), port: 8080, exclusive: true }, () => resolve());
  });
  t.true(server.listening);
  server.close();
});

test('the CLI with --workers: a transfer held by a worker finishes through SIGTERM; kill -9 of the agent leaves no worker behind', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-workers-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const echo = await backend(t, tcpEcho(ip(101)));
  await writeFile(path.join(dir, 'svc.yaml'), serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]));
  await writeFile(path.join(dir, 'eps.yaml'), sliceYaml('echo', 'echo-0', [{ name: 'p', port: echo.port }], [{ ip: ip(101) }]));
  const args = [CLI, '--manifests', dir, '--workers', '2', '--healthz-bind-address=', '--metrics-bind-address=', '--shutdown-grace-period', '20s'];

  // Graceful: the worker's connection keeps working after SIGTERM until the client ends it.
  const proxy = spawnNode(args);
  t.teardown(() => void proxy.child.kill('SIGKILL'));
  const worker = await waitFor('worker process', () => childPids(proxy.child.pid!)[0], START_TIMEOUT_MS);
  await waitFor('proxy listening', () => tcpRequest(ip(1), 8080, 'x').then((r) => r.toString() === 'x'), START_TIMEOUT_MS);
  const conns = await connectUntilOwnedBy(t, ip(1), 8080, worker);
  const held = conns.pop()!;
  await closeAll(conns);
  proxy.child.kill('SIGTERM');
  await waitFor('new connections refused while draining', () => tcpRefused(ip(1), 8080));
  const reply = new Promise<string>((resolve) => {
    let data = '';
    held.on('data', (d: Buffer) => (data += d.toString()));
    held.on('end', () => resolve(data));
  });
  held.end('after SIGTERM');
  t.is(await reply, 'after SIGTERM');
  t.is(await proxy.exited, 0);
  await waitFor('worker gone', () => !alive(worker));

  // Abrupt: the workers notice the agent is gone and exit.
  const again = spawnNode(args);
  t.teardown(() => void again.child.kill('SIGKILL'));
  const w2 = await waitFor('worker process', () => childPids(again.child.pid!)[0], START_TIMEOUT_MS);
  again.child.kill('SIGKILL');
  await again.exited;
  await waitFor('worker gone after kill -9 of the agent', () => !alive(w2), 10_000);
  t.false(alive(w2));
});

function childPids(pid: number): number[] {
  try {
    return readChildren(pid);
  } catch {
    return [];
  }
}

function readChildren(pid: number): number[] {
  // /proc/PID/task/PID/children lists direct children (Linux 3.5+).
  const text = readFileSyncSafe(`/proc/${pid}/task/${pid}/children`);
  return text.trim() === '' ? [] : text.trim().split(/\s+/).map(Number);
}

function readFileSyncSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSyncSafe(`/proc/${pid}/stat`);
    return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

test('a port is never served before its endpoints are known, in the agent process or a worker', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const echo = await backend(t, tcpEcho(ip(101)));
  const workers = await pool(t);
  const fx = await startAgent(t, {}, {}, workers.balancer, workers);
  const n = 40;
  const services = Array.from({ length: n }, (_, i) => serviceYaml(`s${i}`, ip(1 + i), [{ name: 'p', port: 8080 }]));
  const slices = Array.from({ length: n }, (_, i) => sliceYaml(`s${i}`, `s${i}-0`, [{ name: 'p', port: echo.port }], [{ ip: ip(101) }]));
  await fx.write('all.yaml', [...services, ...slices].join('---\n'));
  // Hammer every port from the moment it opens: each connection must be proxied.
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      for (let attempt = 0; attempt < 20;) {
        const s = await new Promise<net.Socket | undefined>((resolve) => {
          const c = net.connect({ host: ip(1 + i), port: 8080 }, () => resolve(c));
          c.on('error', () => resolve(undefined));
        });
        if (s === undefined) {
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        attempt++;
        const reply = await new Promise<string>((resolve) => {
          let data = '';
          s.on('data', (d: Buffer) => (data += d.toString()));
          s.on('close', () => resolve(data));
          s.end('x');
        });
        t.is(reply, 'x', `service s${i}`);
      }
    }),
  );
  await fx.agent.refreshStats();
  t.is(
    fx.agent.status().reduce((sum, st) => sum + (st.stats?.noEndpointRejections ?? 0), 0),
    0,
  );
});

test('ports opened and closed back to back are released in every process', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const workers = await pool(t);
  const { agent } = await startAgent(t, {}, {}, workers.balancer, workers);
  // Opened and closed back to back, as a service added and removed within two syncs.
  for (let i = 0; i < 20; i++) {
    const socket = tcpPort(workers, servicePortName('default', `flap${i}`, 'p'), { host: ip(1 + i), port: 8080 }, new EndpointBackoff());
    await socket.start();
    await socket.close();
  }
  t.truthy(agent);
  for (let i = 0; i < 20; i++) {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: ip(1 + i), port: 8080, exclusive: true }, () => resolve());
    });
    t.true(server.listening, `port 8080 on ${ip(1 + i)} is free again`);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/**
 * host:port → process ids listening on it over TCP (one ss -p for all of them): this process, a
 * worker, or both. Only the given port: other programs on the machine may listen on many.
 */
function listeningOwners(port: number): Map<string, string> {
  const owners = new Map<string, string>();
  for (const line of execFileSync('ss', ['-Htlnp', `sport = :${port}`], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
    const local = line.split(/\s+/)[3];
    if (local === undefined) continue;
    owners.set(local, [...new Set([...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))].sort().join());
  }
  return owners;
}

test('shared handles: 200 ports opened at once all reach the worker, one at a time; a port closed before its turn is not handed over', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const workers = new WorkerPool({ workers: 1, logLevel: 'warn', logFormat: 'json', tcpListeners: 'shared-handle' });
  t.teardown(() => workers.destroy());
  await workers.start();
  const backoff = new EndpointBackoff();
  const sockets = Array.from({ length: 200 }, (_, i) => tcpPort(workers, servicePortName('ns', `svc-${i}`, 'p'), { host: ip(i + 1), port: 8080 }, backoff));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  await Promise.all(sockets.map((s) => s.start()));
  // The last port waits behind 199 others for its turn: closed now, it is never handed over.
  await sockets[199]!.close();
  const [worker] = workers.pids();
  const both = [process.pid, worker!].sort();
  await waitFor(
    'every open port listened on by the worker too',
    () => {
      const owners = listeningOwners(8080);
      return sockets.slice(0, 199).every((_, i) => owners.get(`${ip(i + 1)}:8080`) === both.join());
    },
    30_000,
    100,
  );
  t.false(listeningOwners(8080).has(`${ip(200)}:8080`));
});

test('reuse-port: 1,500 ports opened at once reach the worker in batches and are bound there too; a port closed before its batch left is released in every process', async (t) => {
  const ip = loopbackBlock(blocks.next++);
  const workers = new WorkerPool({ workers: 1, logLevel: 'warn', logFormat: 'json', tcpListeners: 'reuse-port' });
  t.teardown(() => workers.destroy());
  await workers.start();
  const backoff = new EndpointBackoff();
  const ports = [8080, 8081, 8082, 8083, 8084, 8085];
  // More than one batch (a batch holds up to 1,000 messages).
  const sockets = Array.from({ length: 1500 }, (_, i) => tcpPort(workers, servicePortName('ns', `svc-${i}`, 'p'), { host: ip((i % 250) + 1), port: ports[Math.floor(i / 250)]! }, backoff));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  await Promise.all(sockets.map((s) => s.start()));
  // Its bind is still in the batch being gathered: the close must reach the worker after it.
  const last = sockets[1499]!;
  await last.close();
  await waitFor(
    'every open port listened on by the worker too',
    () => {
      const listeners = new Map(ports.flatMap((port) => [...listenerCounts(port)]));
      return sockets.slice(0, 1499).every((_, i) => listeners.get(`${ip((i % 250) + 1)}:${ports[Math.floor(i / 250)]!}`) === 2);
    },
    30_000,
    100,
  );
  t.false(listenerCounts(8085).has(`${ip(250)}:8085`), 'the port closed at once is listened on by no process');
});

/** host:port → how many listening TCP sockets it has (with SO_REUSEPORT, one per process). */
function listenerCounts(port: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of execFileSync('ss', ['-Htln', `sport = :${port}`], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
    const local = line.split(/\s+/)[3];
    if (local !== undefined) counts.set(local, (counts.get(local) ?? 0) + 1);
  }
  return counts;
}
