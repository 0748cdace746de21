import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { ClosedError, PortConflictError } from '../../../lib/errors.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import type { Endpoint } from '../../../lib/model/endpoint.js';
import type { AffinityType } from '../../../lib/model/service.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import type { ListenAddress } from '../../../lib/proxy/proxy-socket.js';
import { UdpProxySocket } from '../../../lib/proxy/udp/udp-proxy-socket.js';
import { backendFor, closedUdpPort, udpEcho, udpRequest } from '../../helpers/backends.js';
import type { Backend } from '../../helpers/backends.js';
import { waitFor } from '../../helpers/wait-for.js';

const spn = servicePortName('default', 'dns', 'dns');

interface Setup {
  proxy: UdpProxySocket;
  balancer: RoundRobinBalancer;
  backoff: EndpointBackoff;
  port: number;
}

/** A started UDP proxy socket on 127.0.0.1 in front of `endpoints`, in that round-robin order; destroyed in teardown. */
async function setup(
  t: ExecutionContext,
  endpoints: readonly Endpoint[],
  options: { affinity?: AffinityType; idleTimeoutMs?: number; maxSessions?: number; listen?: readonly ListenAddress[] } = {},
): Promise<Setup> {
  const balancer = new RoundRobinBalancer({ random: () => 0.999_999 });
  balancer.newService(spn, { type: options.affinity ?? 'None', timeoutSeconds: 0 });
  balancer.updateEndpoints(spn, endpoints);
  const backoff = new EndpointBackoff();
  const proxy = new UdpProxySocket({
    spn,
    listen: options.listen ?? [{ host: '127.0.0.1', port: 0 }],
    balancer,
    backoff,
    idleTimeoutMs: options.idleTimeoutMs,
    maxSessions: options.maxSessions,
  });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  return { proxy, balancer, backoff, port: proxy.addresses()[0]?.port ?? 0 };
}

async function echo(t: ExecutionContext, name?: string): Promise<Backend> {
  return backendFor(t, udpEcho('127.0.0.1', 0, name));
}

function ep(b: { host: string; port: number }): Endpoint {
  return makeEndpoint(b.host, b.port);
}

/** A client socket that stays bound (one client address for several datagrams), closed in teardown. */
async function client(t: ExecutionContext, connectTo?: number): Promise<{ sock: dgram.Socket; request(msg: Buffer | string, port: number, timeoutMs?: number): Promise<Buffer> }> {
  const sock = dgram.createSocket('udp4');
  t.teardown(() => new Promise<void>((resolve) => sock.close(() => resolve())));
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  if (connectTo !== undefined) await new Promise<void>((resolve) => sock.connect(connectTo, '127.0.0.1', () => resolve()));
  const request = (msg: Buffer | string, port: number, timeoutMs = 2000): Promise<Buffer> =>
    new Promise<Buffer>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        sock.removeListener('message', onMessage);
        sock.removeListener('error', onError);
      };
      const onMessage = (reply: Buffer): void => {
        cleanup();
        resolve(reply);
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no UDP reply within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.on('message', onMessage);
      sock.on('error', onError);
      if (connectTo !== undefined) sock.send(msg);
      else sock.send(msg, port, '127.0.0.1');
    });
  return { sock, request };
}

test('echoes abc123 (legacy TestUDPProxy) and counts the session and bytes', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)]);
  t.is((await udpRequest('127.0.0.1', port, 'abc123')).toString(), 'abc123');
  t.is(proxy.sessionCount(), 1);
  t.is(proxy.stats.total, 1);
  t.is(proxy.stats.active, 1);
  t.is(proxy.stats.bytesIn, 6);
  t.is(proxy.stats.bytesOut, 6);
});

test('a session closes after the idle timeout: 1 then 0 (legacy TestUDPProxyTimeout)', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)], { idleTimeoutMs: 250 });
  t.is((await udpRequest('127.0.0.1', port, 'abc123')).toString(), 'abc123');
  t.is(proxy.sessionCount(), 1);
  const started = Date.now();
  await waitFor('the idle session to close', () => proxy.sessionCount() === 0, 2000);
  t.log(`closed ${Date.now() - started} ms after the reply`);
  t.is(proxy.stats.active, 0);
  t.is(proxy.stats.total, 1);
});

test('activity keeps a session alive past the idle timeout', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)], { idleTimeoutMs: 300 });
  const c = await client(t);
  const started = Date.now();
  // Bounded: about 900 ms of traffic, three idle timeouts' worth, one datagram every ~50 ms.
  for (let i = 0; i < 100 && Date.now() - started < 900; i++) {
    t.is((await c.request(`ping ${i}`, port)).toString(), `ping ${i}`);
    await waitFor('50 ms to pass', () => Date.now() - started >= (i + 1) * 50, 1000, 5);
  }
  t.is(proxy.stats.total, 1, 'one session all along');
  t.is(proxy.sessionCount(), 1);
});

test('a 60,000-byte datagram makes the round trip intact', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)]);
  const payload = randomBytes(60_000);
  const reply = await udpRequest('127.0.0.1', port, payload);
  t.is(reply.length, payload.length);
  t.true(reply.equals(payload));
  t.is(proxy.stats.bytesIn, 60_000);
  t.is(proxy.stats.bytesOut, 60_000);
});

test('replies come from the service address: a client connect()ed to it receives them', async (t) => {
  const be = await echo(t);
  const { port } = await setup(t, [ep(be)]);
  const c = await client(t, port);
  const from = new Promise<dgram.RemoteInfo>((resolve) => c.sock.once('message', (_m, rinfo) => resolve(rinfo)));
  t.is((await c.request('hello', port)).toString(), 'hello');
  const rinfo = await from;
  t.is(rinfo.address, '127.0.0.1');
  t.is(rinfo.port, port);
});

test('after close() nothing answers (ICMP unreachable), sessions are gone, and close() is idempotent', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)]);
  t.is((await udpRequest('127.0.0.1', port, 'before')).toString(), 'before');
  t.is(proxy.sessionCount(), 1);
  const first = proxy.close();
  t.is(proxy.close(), first);
  await first;
  await proxy.close();
  proxy.destroy();
  t.is(proxy.sessionCount(), 0);
  t.is(proxy.stats.active, 0);
  t.deepEqual(proxy.addresses(), []);
  // A connected client socket is told of the ICMP port unreachable: a positive sign nothing listens.
  const c = await client(t, port);
  const err = await t.throwsAsync(c.request('after', port));
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  await t.throwsAsync(proxy.start(), { instanceOf: ClosedError });
});

test('no endpoints: the datagram is dropped and counted', async (t) => {
  const { proxy, port } = await setup(t, []);
  const c = await client(t);
  c.sock.send('anyone?', port, '127.0.0.1');
  await waitFor('the rejection to be counted', () => proxy.stats.noEndpointRejections === 1);
  t.is(proxy.sessionCount(), 0);
  t.is(proxy.stats.total, 0);
});

test('at most maxSessions: the least recently active session is evicted first', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)], { maxSessions: 2 });
  const [c1, c2, c3] = [await client(t), await client(t), await client(t)];
  t.is((await c1.request('1', port)).toString(), '1');
  t.is((await c2.request('2', port)).toString(), '2');
  t.is((await c3.request('3', port)).toString(), '3');
  t.is(proxy.sessionCount(), 2);
  t.is(proxy.stats.udpEvictions, 1);
  t.is(proxy.stats.total, 3);

  // c2 still has its session (so c1, the oldest, was the one evicted)...
  t.is((await c2.request('2 again', port)).toString(), '2 again');
  t.is(proxy.stats.total, 3);
  // ...and c1 comes back as a new session, evicting c3 (now the least recently active).
  t.is((await c1.request('1 again', port)).toString(), '1 again');
  t.is(proxy.stats.total, 4);
  t.is(proxy.stats.udpEvictions, 2);
  t.is((await c2.request('2 third', port)).toString(), '2 third');
  t.is(proxy.stats.total, 4);
  t.is(proxy.stats.active, 2);
});

test('an upstream error closes the session, backs the endpoint off, and the next datagram re-picks with reset', async (t) => {
  const good = await echo(t, 'good');
  const dead = makeEndpoint('127.0.0.1', await closedUdpPort());
  // ClientIP affinity: without reset=true the client would be re-pinned to the dead endpoint.
  const { proxy, port, backoff, balancer } = await setup(t, [dead, ep(good)], { affinity: 'ClientIP' });
  const c = await client(t);
  c.sock.send('first', port, '127.0.0.1');
  await waitFor('the failed session to close', () => proxy.stats.dialFailures === 1 && proxy.sessionCount() === 0);
  t.true(backoff.isBackedOff(dead.key));
  t.is((await c.request('second', port)).toString(), 'good');
  t.is(proxy.stats.total, 2);
  t.is(balancer.nextEndpoint(spn, '127.0.0.1', false)?.key, ep(good).key, 're-pinned to the good endpoint');
});

test('start() rejects with PortConflictError when the port is taken, and opens nothing', async (t) => {
  const be = await echo(t);
  const balancer = new RoundRobinBalancer();
  balancer.updateEndpoints(spn, [ep(be)]);
  const proxy = new UdpProxySocket({
    spn,
    listen: [
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: be.port },
    ],
    balancer,
    backoff: new EndpointBackoff(),
  });
  t.teardown(() => proxy.destroy());
  const err = await t.throwsAsync(proxy.start(), { instanceOf: PortConflictError });
  t.is(err?.port, be.port);
  t.deepEqual(proxy.addresses(), []);
});

test('two listen addresses: each client is answered from the address it sent to', async (t) => {
  const be = await echo(t);
  const { proxy } = await setup(t, [ep(be)], {
    listen: [
      { host: '127.0.0.1', port: 0 },
      { host: '127.0.0.1', port: 0 },
    ],
  });
  const [a, b] = proxy.addresses();
  t.truthy(a && b);
  const ca = await client(t, a?.port);
  const cb = await client(t, b?.port);
  t.is((await ca.request('via a', 0)).toString(), 'via a');
  t.is((await cb.request('via b', 0)).toString(), 'via b');
  t.is(proxy.sessionCount(), 2);
});

test('per endpoint: sessions count as active and total on their endpoint; an upstream error as a failure', async (t) => {
  const good = await echo(t, 'good');
  const dead = makeEndpoint('127.0.0.1', await closedUdpPort());
  const { proxy, port } = await setup(t, [dead, ep(good)], { idleTimeoutMs: 300 });
  const c = await client(t);
  c.sock.send('first', port, '127.0.0.1');
  await waitFor('the failed session to close', () => proxy.stats.dialFailures === 1 && proxy.sessionCount() === 0);
  t.deepEqual(proxy.stats.endpoints.get(dead.key), { active: 0, total: 1, dialFailures: 1 });
  t.is((await c.request('second', port)).toString(), 'good');
  t.deepEqual(proxy.stats.endpoints.get(ep(good).key), { active: 1, total: 1, dialFailures: 0 });
  await waitFor('the idle session to close', () => proxy.sessionCount() === 0);
  t.deepEqual(proxy.stats.endpoints.get(ep(good).key), { active: 0, total: 1, dialFailures: 0 });
});

test('200 clients starting one turn apart: every session opens and no datagram of any client is lost', async (t) => {
  const be = await echo(t);
  const { proxy, port } = await setup(t, [ep(be)]);
  const clients = await Promise.all(Array.from({ length: 200 }, () => client(t)));
  // Clients start one event-loop turn apart, each sending two datagrams: new sessions' sockets
  // are being bound and connected while the next clients' datagrams arrive.
  const pending: Array<Promise<Buffer>> = [];
  for (const [i, c] of clients.entries()) {
    pending.push(c.request(`a${i}`, port, 3000));
    c.sock.send(`b${i}`, port, '127.0.0.1');
    await new Promise((resolve) => setImmediate(resolve));
  }
  const replies = (await Promise.all(pending)).map((r) => r.toString());
  t.deepEqual(
    replies,
    clients.map((_, i) => `a${i}`),
  );
  await waitFor('both datagrams of every client counted', () => proxy.stats.bytesIn === clients.reduce((n, _, i) => n + `a${i}`.length + `b${i}`.length, 0));
  t.is(proxy.stats.total, 200);
  t.is(proxy.sessionCount(), 200);
});

test('running out of descriptors (EMFILE) for session sockets is a local resource error: no dial failure, no back-off', async (t) => {
  const be = await echo(t);
  const childPath = fileURLToPath(new URL('fixtures/udp-proxy-child.js', import.meta.url));
  // A low descriptor limit for the child only; sessions idle out after 1 s.
  const child = spawn('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"', process.execPath, childPath, String(be.port), '1000'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    child.stdin.end();
    if (child.exitCode === null) child.kill();
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c: string) => (stdout += c));
  child.stderr.on('data', (c: string) => (stderr += c));
  const line = (n: number): Promise<Record<string, number>> =>
    waitFor(`line ${n} from the child`, () => {
      const lines = stdout.split('\n');
      return lines.length > n + 1 ? (JSON.parse(lines[n] as string) as Record<string, number>) : undefined;
    });
  const { port } = await line(0);

  // 100 sources, each its own session of two descriptors: far more than 64.
  const sources: dgram.Socket[] = [];
  t.teardown(() => sources.forEach((s) => s.close()));
  let answered = 0;
  await Promise.all(
    Array.from({ length: 100 }, () => {
      const s = dgram.createSocket('udp4');
      sources.push(s);
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        s.once('message', () => {
          answered++;
          clearTimeout(timer);
          resolve();
        });
        s.send('q', port as number, '127.0.0.1');
      });
    }),
  );
  t.true(answered > 0 && answered < 100, `some answered, not all: ${answered}`);
  t.is(child.exitCode, null, `the proxy process exited: ${stderr}`);
  child.stdin.write('stats\n');
  const stats = await line(1);
  t.log(`child stats: ${JSON.stringify(stats)}`);
  t.true((stats['localResourceErrors'] ?? 0) > 0, 'EMFILE is counted as a local resource error');
  t.is(stats['dialFailures'], 0, 'and never as an upstream failure');
  t.is(stats['backedOff'], 0, 'the endpoint is not backed off');
  // Once the sessions idle out, a new client is served.
  const reply = await waitFor('a new client served', async () => (await udpRequest('127.0.0.1', port as number, 'hello', 500)).toString() === 'hello', 10_000);
  t.true(reply);
});
