import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { tcpNativeAvailable, tcpNativeUnavailableReason } from '../../../lib/internals/tcp-native.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import { TcpProxySocket } from '../../../lib/proxy/tcp/tcp-proxy-socket.js';
import type { TcpProxySocketOptions } from '../../../lib/proxy/tcp/tcp-proxy-socket.js';
import { backendFor, tcpServer } from '../../helpers/backends.js';
import { waitFor, waitUntilSteady } from '../../helpers/wait-for.js';
import { newSockets, openSockets, socketLines } from '../../helpers/open-sockets.js';

// What only the native relay must get right on its own: the descriptors it shares with libuv's
// handles, and what JavaScript reads of it without a call per read. The behaviours every data path
// shares run in data-paths.spec.ts. With CI=true the addon must be built; elsewhere these are
// skipped (reported as skipped) when it is not.
const mustRun = tcpNativeAvailable() || process.env['CI'] === 'true';
if (!mustRun) console.warn(`skipping the native TCP relay specs: ${tcpNativeUnavailableReason()} (with CI=true they run, and fail)`);
const nativeTest = mustRun ? test : test.skip;
// Socket counts are the process's: those tests run alone, before the others.
const nativeSerialTest = mustRun ? test.serial : test.skip;

const spn = servicePortName('default', 'native-relay', 'p');

/** A backend with its own connection handler; its sockets are destroyed in teardown. */
async function backend(t: ExecutionContext, onConnection: (s: net.Socket) => void): Promise<number> {
  return (await backendFor(t, tcpServer(onConnection))).port;
}

async function proxyFor(t: ExecutionContext, backendPort: number, options: Partial<TcpProxySocketOptions> = {}): Promise<{ proxy: TcpProxySocket; port: number }> {
  const balancer = new RoundRobinBalancer();
  balancer.newService(spn, { type: 'None', timeoutSeconds: 0 });
  balancer.updateEndpoints(spn, [makeEndpoint('127.0.0.1', backendPort)]);
  const proxy = new TcpProxySocket({ spn, listen: [{ host: '127.0.0.1', port: 0 }], balancer, backoff: new EndpointBackoff(), ...options });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  t.is(proxy.dataPath, 'native');
  return { proxy, port: proxy.addresses()[0]?.port ?? 0 };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function readAll(s: net.Socket): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

nativeSerialTest('every socket of a relayed connection is closed once it ends: by FIN, by a RST from either side, and by destroy()', async (t) => {
  let mode: 'echo' | 'reset' = 'echo';
  const port = await backend(t, (s) => {
    if (mode === 'reset') s.once('data', () => s.resetAndDestroy());
    else s.pipe(s);
  });
  const { proxy, port: front } = await proxyFor(t, port);
  const before = openSockets();
  // A FIN from the client, the echo, the endpoint's FIN.
  for (let i = 0; i < 5; i++) {
    const c = await connect(front);
    const all = readAll(c);
    c.end(`req ${i}`);
    t.is((await all).toString(), `req ${i}`);
    c.destroy();
  }
  // A RST from the endpoint.
  mode = 'reset';
  const r = await connect(front);
  const reset = new Promise<string | undefined>((resolve) => r.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
  r.write('x');
  t.is(await reset, 'ECONNRESET');
  r.destroy();
  // A RST from the client.
  mode = 'echo';
  const rc = await connect(front);
  rc.write('y');
  await waitFor('the relay to carry a byte', () => proxy.stats.bytesIn === 5 * 5 + 1 + 1);
  rc.resetAndDestroy();
  await waitFor('every connection to finish', () => proxy.connectionCount() === 0 && proxy.stats.active === 0);
  await waitFor('no socket of those connections left', () => socketLines(newSockets(before)).length === 0, 5000).catch(() => undefined);
  t.deepEqual(socketLines(newSockets(before)), []);
  // destroy() of the port resets a running relay and closes its sockets too.
  const d = await connect(front);
  d.write('z');
  await waitFor('the last relay to carry its byte', () => proxy.stats.active === 1 && proxy.stats.bytesOut === 5 * 5 + 1 + 1);
  const gone = new Promise<string | undefined>((resolve) => d.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
  proxy.destroy();
  t.is(await gone, 'ECONNRESET');
  d.destroy();
  t.is(proxy.stats.active, 0);
  // The backend closes its side once the RST reaches it.
  await waitFor('the destroyed relay to leave no socket', () => socketLines(newSockets(before)).length === 0, 5000).catch(() => undefined);
  // The listening socket was closed by destroy() too: one fewer than before is fine, none new.
  t.deepEqual(socketLines(newSockets(before)), []);
});

nativeSerialTest('relays that end in the same wakeup are each reported once: every FIN delivered, every socket closed, counts exact', async (t) => {
  const n = 40;
  const waiting: net.Socket[] = [];
  let ends = 0;
  // Every endpoint socket answers and ends in the same tick, once all the pings are in: their FINs
  // reach the relays together, and the clients' FINs follow at once.
  const port = await backend(t, (s) => {
    s.once('data', () => {
      waiting.push(s);
      if (waiting.length === n) for (const w of waiting) w.end('pong');
    });
    s.once('end', () => ends++);
  });
  const { proxy, port: front } = await proxyFor(t, port);
  const before = openSockets();
  const replies = await Promise.all(
    Array.from({ length: n }, async () => {
      const c = await connect(front);
      const all = readAll(c);
      c.once('end', () => c.end());
      c.write('ping');
      const reply = (await all).toString();
      return reply;
    }),
  );
  t.deepEqual(
    replies,
    Array.from({ length: n }, () => 'pong'),
  );
  await waitFor('every connection to finish', () => proxy.connectionCount() === 0 && proxy.stats.active === 0);
  await waitFor('every client FIN to reach the endpoint', () => ends === n);
  t.is(proxy.stats.bytesIn, 4 * n);
  t.is(proxy.stats.bytesOut, 4 * n);
  await waitFor('no socket of those connections left', () => socketLines(newSockets(before)).length === 0, 5000).catch(() => undefined);
  t.deepEqual(socketLines(newSockets(before)), []);
});

nativeTest('a client that resets at once, with or without bytes first (often before its relay starts): the endpoint gets a RST, never a FIN', async (t) => {
  const n = 20;
  const outcomes: string[] = [];
  const port = await backend(t, (s) => {
    s.on('data', () => {});
    s.once('end', () => outcomes.push('FIN'));
    s.once('error', (e: NodeJS.ErrnoException) => outcomes.push(e.code ?? e.message));
  });
  const { proxy, port: front } = await proxyFor(t, port);
  for (let i = 0; i < n; i++) {
    const c = await connect(front);
    c.on('error', () => {});
    // With bytes before the RST, and without (the first read then finds the reset itself).
    if (i % 2 === 0) c.write('x');
    c.resetAndDestroy();
  }
  await waitFor('every endpoint connection to end', () => outcomes.length === n);
  t.deepEqual(
    outcomes,
    Array.from({ length: n }, () => 'ECONNRESET'),
  );
  await waitFor('every connection to finish', () => proxy.connectionCount() === 0 && proxy.stats.active === 0);
});

// socat (installed by .ci/run) shuts down its sending side at its input's end and waits (-t) for the reply.
nativeTest('a half-close from socat: its bytes and FIN reach the endpoint, whose reply after it comes back', async (t) => {
  const port = await backend(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(Buffer.concat(chunks).toString().toUpperCase()));
  });
  const { proxy, port: front } = await proxyFor(t, port);
  const child = spawn('socat', ['-t', '5', '-', `TCP4:127.0.0.1:${front}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill();
  });
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c: string) => (stdout += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stdin.end('sent by socat');
  t.is(await Promise.race([exited, failed.then((e) => `socat: ${e.message} (apt-get install -y socat)`)]), 0);
  t.is(stdout, 'SENT BY SOCAT');
  await waitFor('the connection to finish', () => proxy.connectionCount() === 0 && proxy.stats.active === 0);
  t.is(proxy.stats.bytesIn, 13);
  t.is(proxy.stats.bytesOut, 13);
});

nativeTest('the byte totals are exact while a transfer runs (no call per read), and after it', async (t) => {
  const payload = randomBytes(32 << 20);
  const port = await backend(t, (s) => s.end(payload));
  const { proxy, port: front } = await proxyFor(t, port);
  const c = await connect(front);
  t.teardown(() => c.destroy());
  // Paused: the relay is held back by the client's full buffers, mid-transfer.
  c.pause();
  const held = await waitUntilSteady('bytesOut', () => proxy.stats.bytesOut);
  t.true(held > 0 && held < payload.length, `read ${held} bytes while the client did not read`);
  t.is(proxy.stats.active, 1);
  const all = readAll(c);
  c.resume();
  t.true((await all).equals(payload));
  c.end();
  await waitFor('the connection to finish', () => proxy.connectionCount() === 0 && proxy.stats.active === 0);
  t.is(proxy.stats.bytesOut, payload.length);
  t.is(proxy.stats.bytesIn, 0);
});

nativeTest('keep-alive: many request/response turns on one relayed connection, each answered in turn and counted exactly', async (t) => {
  const port = await backend(t, (s) => {
    s.on('data', (c: Buffer) => s.write(Buffer.concat([c, c])));
    s.on('end', () => s.end());
  });
  const { proxy, port: front } = await proxyFor(t, port);
  const c = await connect(front);
  t.teardown(() => c.destroy());
  const turns = 200;
  // Each request goes out once the previous answer is in, as on a keep-alive connection.
  await new Promise<void>((resolve, reject) => {
    let got = 0;
    let sent = 1;
    c.on('data', (b: Buffer) => {
      got += b.length;
      if (got < 20 * sent) return;
      if (sent === turns) resolve();
      else {
        sent++;
        c.write('0123456789');
      }
    });
    c.once('error', reject);
    c.write('0123456789');
  });
  t.is(proxy.stats.bytesIn, 10 * turns);
  t.is(proxy.stats.bytesOut, 20 * turns);
  t.is(proxy.stats.active, 1);
  c.end();
  await waitFor('the connection to finish', () => proxy.connectionCount() === 0 && proxy.stats.active === 0);
});
