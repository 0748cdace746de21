import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import { MAX_CONNECTION_AGE_ANNOTATION } from '../../../lib/model/max-connection-age-annotation.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import { AGE_JITTER, IdleSweep } from '../../../lib/proxy/tcp/idle-sweep.js';
import type { IdleTracked } from '../../../lib/proxy/tcp/idle-sweep.js';
import { TcpProxySocket } from '../../../lib/proxy/tcp/tcp-proxy-socket.js';
import { loopbackBlock } from '../../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../../helpers/agent-fixture.js';
import { tcpEcho } from '../../helpers/backends.js';
import { waitFor } from '../../helpers/wait-for.js';

const spn = servicePortName('default', 'aged', 'p');
const AGE_MS = 400;

async function proxyTo(t: ExecutionContext, port: number, maxConnectionAgeMs: number): Promise<{ proxy: TcpProxySocket; port: number }> {
  const balancer = new RoundRobinBalancer();
  balancer.newService(spn, { type: 'None', timeoutSeconds: 0 });
  balancer.updateEndpoints(spn, [makeEndpoint('127.0.0.1', port)]);
  const proxy = new TcpProxySocket({ spn, listen: [{ host: '127.0.0.1', port: 0 }], balancer, backoff: new EndpointBackoff(), policy: { maxConnectionAgeMs } });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  return { proxy, port: proxy.addresses()[0]!.port };
}

interface Client {
  socket: net.Socket;
  ended(): boolean;
  closed(): boolean;
  bytes(): number;
}

function connect(t: ExecutionContext, port: number, host = '127.0.0.1'): Promise<Client> {
  return new Promise((resolve, reject) => {
    let ended = false;
    let closed = false;
    let bytes = 0;
    const socket = net.connect({ host, port });
    t.teardown(() => socket.destroy());
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.on('end', () => (ended = true));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, ended: () => ended, closed: () => closed, bytes: () => bytes }));
    socket.once('error', reject);
  });
}

/** A backend that sends `size` bytes at once, then keeps the connection open until its peer ends; records the FINs it got. */
async function talker(t: ExecutionContext, size: number, answerFin = true): Promise<{ port: number; ended: () => number }> {
  let ended = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('end', () => {
      ended++;
      if (answerFin) s.end();
    });
    s.on('close', () => sockets.delete(s));
    s.write(Buffer.alloc(size, 7));
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, ended: () => ended };
}

test('a long-lived connection is closed after the age: everything sent before arrives, then a FIN both ways', async (t) => {
  // 8 MiB: more than the socket buffers hold, so part of it is still in the proxy when the age comes.
  const size = 8 << 20;
  const backend = await talker(t, size);
  const { proxy, port } = await proxyTo(t, backend.port, AGE_MS);
  const client = await connect(t, port);
  client.socket.pause(); // reads nothing until the age has passed, so the bytes are in flight then
  await waitFor('aged', () => proxy.stats.maxAgeCloses === 1, 10_000);
  await waitFor('the endpoint got a FIN', () => backend.ended() === 1, 10_000);
  client.socket.resume();
  await waitFor('the client sees the end', () => client.ended() && client.closed(), 10_000);
  t.is(client.bytes(), size);
  await waitFor('the proxy lets go of both sockets', () => proxy.connectionCount() === 0 && proxy.stats.active === 0, 10_000);
});

test('an echo connection in use is closed by its age and its echoed bytes are complete', async (t) => {
  const echo = await tcpEcho();
  t.teardown(() => echo.close());
  const { proxy, port } = await proxyTo(t, echo.port, AGE_MS);
  const client = await connect(t, port);
  const chunk = Buffer.alloc(64 << 10, 1);
  client.socket.write(chunk);
  await waitFor('the echo', () => client.bytes() === chunk.length);
  await waitFor('the client sees the end', () => client.ended() && client.closed(), 10_000);
  t.is(client.bytes(), chunk.length);
  t.is(proxy.stats.maxAgeCloses, 1);
  t.is(proxy.stats.tcpIdleTimeouts, 0);
});

test('an endpoint that ignores the FIN: the client gets its FIN after the grace, and the connection is closed', async (t) => {
  const backend = await talker(t, 10, false);
  const { proxy, port } = await proxyTo(t, backend.port, AGE_MS);
  const client = await connect(t, port);
  await waitFor('the end', () => client.ended() && client.closed(), 10_000);
  t.is(client.bytes(), 10);
  t.is(backend.ended(), 1);
  await waitFor('the proxy lets go of both sockets', () => proxy.connectionCount() === 0, 10_000);
});

test('age 0 means never; setting an age applies to established connections', async (t) => {
  const echo = await tcpEcho();
  t.teardown(() => echo.close());
  const never = await proxyTo(t, echo.port, 0);
  const aged = await proxyTo(t, echo.port, AGE_MS);
  const a = await connect(t, never.port);
  const b = await connect(t, aged.port);
  await waitFor('the aged one closed', () => b.closed(), 10_000);
  // Same age, no limit: still open.
  t.false(a.ended());
  t.is(never.proxy.stats.maxAgeCloses, 0);
  never.proxy.setConnectionPolicy({ maxConnectionAgeMs: AGE_MS });
  await waitFor('closed once the age is set', () => a.closed(), 10_000);
  t.is(never.proxy.stats.maxAgeCloses, 1);
});

/** A small seeded generator (mulberry32), so the jitter test sees the same draws every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('jitter: connections opened together close spread evenly over [age, age * 1.1]', (t) => {
  const age = 10_000;
  const n = 2000;
  let clock = 0;
  const closedAt: number[] = [];
  const conns: IdleTracked[] = [];
  for (let i = 0; i < n; i++) {
    const c: IdleTracked = {
      idleTicks: 0,
      idleClosing: false,
      closeIdle: () => t.fail('no idle timeout is set'),
      startedAt: 0,
      ageJitter: -1,
      agedAt: 0,
      closeAged(now: number) {
        (this as { agedAt: number }).agedAt = now;
        closedAt.push(now);
      },
      closeAfterGrace: () => {},
    };
    conns.push(c);
  }
  const sweep = new IdleSweep(
    () => conns,
    seeded(42),
    () => clock,
  );
  sweep.setMaxAge(age);
  const tick = sweep.tickMs;
  sweep.stop(); // driven by hand below, on its own clock
  t.true(tick > 0 && tick <= (age * AGE_JITTER) / 4);
  for (clock = 0; clock <= age * 1.2; clock += tick) sweep.sweep();
  t.is(closedAt.length, n);
  t.true(Math.min(...closedAt) >= age);
  t.true(Math.max(...closedAt) <= age * (1 + AGE_JITTER) + tick);
  // The window is four ticks: a connection closes at the first sweep past its moment, so the
  // closes fall on the four sweeps after the age, a quarter each expected (500; binomial sd about
  // 19): none empty or crowded.
  const bins = [0, 0, 0, 0];
  for (const at of closedAt) bins[Math.max(0, Math.round((at - age) / tick) - 1)]!++;
  for (const b of bins) t.true(b > 400 && b < 600, `bins ${bins.join(',')}`);
});

const ip = loopbackBlock(228);

function annotated(yaml: string, value: string): string {
  return yaml.replace('metadata:\n', `metadata:\n  annotations:\n    ${MAX_CONNECTION_AGE_ANNOTATION}: "${value}"\n`);
}

test('the Service annotation sets the age; a bad value keeps the last good one', async (t) => {
  const echo = await tcpEcho();
  t.teardown(() => echo.close());
  const eps = sliceYaml('aged', 'aged-0', [{ name: 'p', port: echo.port }], [{ ip: '127.0.0.1' }]);
  const svc = (v: string): string => annotated(serviceYaml('aged', ip(1), [{ name: 'p', port: 7001 }]), v);
  const fx = await startAgent(t, { 'svc.yaml': svc('0'), 'eps.yaml': eps });
  await waitFor('listening', () => fx.agent.status().some((p) => p.listening.length > 0), 10_000);
  const first = await connect(t, 7001, ip(1));
  // A bad value: the Service keeps "0".
  await fx.write('svc.yaml', svc('soon'));
  await new Promise((r) => setTimeout(r, 1500)); // longer than the smallest age accepted; nothing to poll for
  t.false(first.ended());
  await fx.write('svc.yaml', svc('1s'));
  await waitFor('closed by the annotated age', () => first.closed(), 10_000);
});
