import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { makeEndpoint } from '../../lib/model/endpoint.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../lib/proxy/endpoint-backoff.js';
import { tcpNativeAvailable } from '../../lib/internals/tcp-native.js';
import { nativeReusePortSupported, reusePortSupported } from '../../lib/workers/tcp-listener-mode.js';
import type { TcpListenerMode, TcpListenerModeOption } from '../../lib/workers/tcp-listener-mode.js';
import { WorkerPool } from '../../lib/workers/worker-pool.js';
import { closeAll, connectUntilOwnedBy, echoConnection } from '../helpers/echo-connections.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../helpers/agent-fixture.js';
import type { AgentFixture } from '../helpers/agent-fixture.js';
import { tcpEcho, tcpRefused } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';

// Addresses 127.77.100-109.x belong to this file.
const blocks = { next: 100 };

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
/** net.Server.listen({ reusePort }) arrived in Node 23.1 and 22.12. */
const nodeHasReusePort = major > 22 || (major === 22 && minor >= 12);
/** The native TCP addon's listeners bind with SO_REUSEPORT on any Node version. */
const reusePortHere = nodeHasReusePort || tcpNativeAvailable();
/** Both paths where this process has both; the shared handle alone where it has only that. */
const modes: TcpListenerMode[] = reusePortHere ? ['reuse-port', 'shared-handle'] : ['shared-handle'];

async function backend<T extends Backend>(t: ExecutionContext, b: Promise<T>): Promise<T> {
  const started = await b;
  t.teardown(() => started.close());
  return started;
}

function pool(t: ExecutionContext, tcpListeners: TcpListenerModeOption, restartDelayMs = 50): WorkerPool {
  const p = new WorkerPool({ workers: 1, logLevel: 'error', logFormat: 'json', restartDelayMs, tcpListeners });
  t.teardown(() => p.destroy());
  return p;
}

/**
 * The listening TCP sockets bound to host:port, each as the ids of the processes holding it (ss
 * -p): one socket held by every process (a shared handle), or one socket per process (SO_REUSEPORT).
 */
function listeners(host: string, port: number): number[][] {
  const src = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const out = execFileSync('ss', ['-Htlnp', 'src', src], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])).sort((a, b) => a - b));
}

/** What listeners() shows once the worker serves the port too. */
function expectedListeners(mode: TcpListenerMode, agentPid: number, workerPid: number): number[][] {
  const both = [agentPid, workerPid].sort((a, b) => a - b);
  return mode === 'reuse-port' ? both.map((pid) => [pid]) : [both];
}

function sameListeners(a: number[][], b: number[][]): boolean {
  const key = (l: number[][]): string => JSON.stringify([...l].map((pids) => pids.join(',')).sort());
  return key(a) === key(b);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** An agent whose pool uses `mode`, with one service, ip(1):8080, in front of a TCP echo server on ip(101). */
async function echoService(t: ExecutionContext, ip: (host: number) => string, mode: TcpListenerMode, restartDelayMs?: number): Promise<AgentFixture & { workers: WorkerPool }> {
  const echo = await backend(t, tcpEcho(ip(101)));
  const workers = pool(t, mode, restartDelayMs);
  const fx = await startAgent(
    t,
    { 'svc.yaml': serviceYaml('echo', ip(1), [{ name: 'p', port: 8080 }]), 'eps.yaml': sliceYaml('echo', 'echo-0', [{ name: 'p', port: echo.port }], [{ ip: ip(101) }]) },
    {},
    workers.balancer,
    workers,
  );
  t.is(workers.tcpListenerMode, mode);
  return { ...fx, workers };
}

test('the probes find SO_REUSEPORT exactly where Node or the native addon has it; auto picks it there and the shared handle elsewhere', async (t) => {
  t.is(await reusePortSupported(), nodeHasReusePort);
  t.is(nativeReusePortSupported(), tcpNativeAvailable());
  const auto = pool(t, 'auto');
  await auto.start();
  t.is(auto.tcpListenerMode, reusePortHere ? 'reuse-port' : 'shared-handle');
  const asked = pool(t, 'reuse-port');
  if (reusePortHere) {
    await asked.start();
    t.is(asked.tcpListenerMode, 'reuse-port');
  } else {
    const err = await t.throwsAsync(asked.start(), { instanceOf: InvalidConfigError });
    t.regex(err!.message, /tcpListeners 'reuse-port' needs SO_REUSEPORT/);
    t.deepEqual(asked.pids(), [], 'no worker started');
  }
});

for (const mode of modes) {
  test(`${mode}: a port bound to port 0 is served by this process and the worker, on IPv4 and IPv6`, async (t) => {
    const ip = loopbackBlock(blocks.next++);
    const workers = pool(t, mode);
    await workers.start();
    const [workerPid] = workers.pids();
    t.truthy(workerPid);
    for (const [i, host] of [ip(1), '::1'].entries()) {
      const echo = await backend(t, tcpEcho(host));
      const spn = servicePortName('default', `zero${i}`, 'p');
      workers.balancer.newService(spn, { type: 'None', timeoutSeconds: 0 });
      workers.balancer.updateEndpoints(spn, [makeEndpoint(host, echo.port)]);
      const socket = workers.create({
        spn,
        protocol: 'TCP',
        listen: [{ host, port: 0 }],
        affinity: 'None',
        balancer: workers.balancer,
        backoff: new EndpointBackoff(),
        udpTimeoutMs: 1000,
        udpMaxSessions: 10,
      });
      t.teardown(() => socket.destroy());
      await socket.start();
      const port = socket.addresses()[0]!.port;
      t.not(port, 0);
      const expected = expectedListeners(mode, process.pid, workerPid!);
      await waitFor(`worker listening on ${host}:${port}`, () => sameListeners(listeners(host, port), expected));
      const conns = await connectUntilOwnedBy(t, host, port, workerPid!);
      conns.push(...(await connectUntilOwnedBy(t, host, port, process.pid)));
      await closeAll(conns);
    }
  });

  test(`${mode}: while a killed worker is away every new connection is served, and once started again it serves too`, async (t) => {
    const ip = loopbackBlock(blocks.next++);
    // Restarted after two seconds: the port is seen without it first.
    const { workers } = await echoService(t, ip, mode, 2000);
    const [first] = workers.pids();
    await waitFor('worker listening', () => sameListeners(listeners(ip(1), 8080), expectedListeners(mode, process.pid, first!)));
    await closeAll(await connectUntilOwnedBy(t, ip(1), 8080, first!));

    process.kill(first!, 'SIGKILL');
    // Not its zombie (the main thread's exit): its last thread's, which closes its descriptors.
    await waitFor('worker gone', () => !alive(first!) && !listeners(ip(1), 8080).flat().includes(first!));
    // Its socket left the port with it (SO_REUSEPORT: the kernel no longer hashes connections to
    // it), so none is lost. Whether the restarted worker takes some of them depends on timing.
    const meanwhile: net.Socket[] = [];
    for (let i = 0; i < 10; i++) meanwhile.push(await echoConnection(t, ip(1), 8080));
    t.is(meanwhile.length, 10);
    await closeAll(meanwhile);

    const second = await waitFor('worker started again', () => workers.pids().find((pid) => pid !== first), 10_000);
    await waitFor('new worker listening', () => sameListeners(listeners(ip(1), 8080), expectedListeners(mode, process.pid, second)));
    await closeAll(await connectUntilOwnedBy(t, ip(1), 8080, second));
  });

  test(`${mode}: a drain refuses new connections in every process, lets the worker's connection finish, and frees the port`, async (t) => {
    const ip = loopbackBlock(blocks.next++);
    const { agent, workers } = await echoService(t, ip, mode);
    const [workerPid] = workers.pids();
    await waitFor('worker listening', () => sameListeners(listeners(ip(1), 8080), expectedListeners(mode, process.pid, workerPid!)));
    const conns = await connectUntilOwnedBy(t, ip(1), 8080, workerPid!);
    const held = conns.pop()!;
    await closeAll(conns);

    const drained = agent.drain(20_000);
    await waitFor('new connections refused', () => tcpRefused(ip(1), 8080));
    t.deepEqual(listeners(ip(1), 8080), [], 'no process listens');
    const reply = new Promise<string>((resolve) => {
      let data = '';
      held.on('data', (d: Buffer) => (data += d.toString()));
      held.on('end', () => resolve(data));
    });
    held.end('after drain');
    t.is(await reply, 'after drain');
    await drained;
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: ip(1), port: 8080, exclusive: true }, () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
}
