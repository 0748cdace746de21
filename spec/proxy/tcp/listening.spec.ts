import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { ListenError, PortConflictError } from '../../../lib/errors.js';
import { TCP_HANDLES } from '../../../lib/internals/tcp-handles.js';
import { tcpNativeAvailable } from '../../../lib/internals/tcp-native.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import type { ListenAddress } from '../../../lib/proxy/proxy-socket.js';
import { TcpProxySocket } from '../../../lib/proxy/tcp/tcp-proxy-socket.js';

// A port on the native data path listens on a socket of the native addon's; one forwarding on
// handles on a libuv handle of its own, without a net.Server; one on `net` keeps its net.Server.
// All must fail exactly as net.Server.listen does. With CI=true the addon must be there; elsewhere
// the native runs are skipped when it is not.
const PATHS = ['native', 'handles', 'net'] as const;
const nativeMissing = !tcpNativeAvailable() && process.env['CI'] !== 'true';

function proxy(t: ExecutionContext, dataPath: (typeof PATHS)[number], listen: ListenAddress[], endpointPort = 9): TcpProxySocket {
  const spn = servicePortName('default', `listening-${dataPath}`, 'p');
  const balancer = new RoundRobinBalancer();
  balancer.newService(spn, { type: 'None', timeoutSeconds: 0 });
  balancer.updateEndpoints(spn, [makeEndpoint('127.0.0.1', endpointPort)]);
  const p = new TcpProxySocket({ spn, listen, balancer, backoff: new EndpointBackoff(), dataPath });
  t.teardown(() => p.destroy());
  return p;
}

/** The error a plain net.Server emits listening on host:port. */
function netListenError(host: string, port: number): Promise<NodeJS.ErrnoException> {
  return new Promise<NodeJS.ErrnoException>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', resolve);
    server.listen({ host, port }, () => {
      server.close();
      reject(new Error(`${host}:${port} could be listened on`));
    });
  });
}

function fields(err: unknown): Record<string, unknown> {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  return { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, address: e.address, port: e.port };
}

async function heldPort(t: ExecutionContext): Promise<number> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(() => holder.close());
  return (holder.address() as AddressInfo).port;
}

for (const path of PATHS) {
  if (path === 'native' && nativeMissing) continue;
  test(`${path}: a port in use rejects with PortConflictError whose cause is the error net.Server gives`, async (t) => {
    const port = await heldPort(t);
    const err = await t.throwsAsync(proxy(t, path, [{ host: '127.0.0.1', port }]).start(), { instanceOf: PortConflictError });
    t.deepEqual(fields(err?.cause), fields(await netListenError('127.0.0.1', port)));
    t.is((err?.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
  });

  test(`${path}: an address not on this host rejects with ListenError whose cause is the error net.Server gives`, async (t) => {
    const err = await t.throwsAsync(proxy(t, path, [{ host: '192.0.2.44', port: 7001 }]).start(), { instanceOf: ListenError });
    t.deepEqual(fields(err?.cause), fields(await netListenError('192.0.2.44', 7001)));
  });

  test(`${path}: two addresses, the second in use: nothing stays open, the first address can be bound again`, async (t) => {
    const taken = await heldPort(t);
    // A port free on 127.0.0.2 (bound once by the kernel's choice, then released).
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen({ host: '127.0.0.2', port: 0 }, () => resolve()));
    const free = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await t.throwsAsync(
      proxy(t, path, [
        { host: '127.0.0.2', port: free },
        { host: '127.0.0.1', port: taken },
      ]).start(),
      { instanceOf: PortConflictError },
    );
    await bindsAgain('127.0.0.2', free);
  });
}

test('handles: the listener is a libuv handle (sendable to another process), it accepts, and close() frees the port at once', async (t) => {
  t.truthy(TCP_HANDLES?.listen, 'this Node (20 and 24 checked) lets a handle bind and listen');
  const p = proxy(t, 'handles', [{ host: '127.0.0.1', port: 0 }], await echoServer(t));
  await p.start();
  const [handle] = p.listeningHandles();
  t.is(handle?.constructor.name, 'TCP');
  const port = p.addresses()[0]?.port ?? 0;
  t.true(port > 0);
  t.is(await echoed('127.0.0.1', port), 'ping');
  await p.close();
  t.deepEqual(p.addresses(), []);
  await bindsAgain('127.0.0.1', port);
});

/** The reply of an echo through host:port to one message. */
function echoed(host: string, port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const s = net.connect({ host, port }, () => s.end('ping'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.once('end', () => resolve(got));
    s.once('error', reject);
  });
}

/** Fails unless host:port can be bound at once (a closed listener left nothing behind). */
async function bindsAgain(host: string, port: number): Promise<void> {
  const again = net.createServer();
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.listen({ host, port }, () => resolve());
  });
  await new Promise<void>((resolve) => again.close(() => resolve()));
}

async function echoServer(t: ExecutionContext): Promise<number> {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(() => echo.close());
  return (echo.address() as AddressInfo).port;
}

(nativeMissing ? test.skip : test)("native: the listener is the addon's (no handle to send), port 0 reports the kernel's port, it accepts, and close() frees the port at once", async (t) => {
  const p = proxy(t, 'native', [{ host: '127.0.0.1', port: 0 }], await echoServer(t));
  await p.start();
  t.true(p.acceptsNatively);
  t.deepEqual(p.listeningHandles(), []);
  const port = p.addresses()[0]?.port ?? 0;
  t.true(port > 0);
  t.is(await echoed('127.0.0.1', port), 'ping');
  await p.close();
  t.deepEqual(p.addresses(), []);
  await bindsAgain('127.0.0.1', port);
});

(nativeMissing ? test.skip : test)('native: on ::, ipv6Only decides whether IPv4 clients are accepted and whether the IPv4 port is left free', async (t) => {
  const endpoint = await echoServer(t);
  const dual = proxy(t, 'native', [{ host: '::', port: 0 }], endpoint);
  await dual.start();
  t.true(dual.acceptsNatively);
  const dualPort = dual.addresses()[0]?.port ?? 0;
  t.deepEqual(dual.addresses(), [{ host: '::', port: dualPort }]);
  t.is(await echoed('127.0.0.1', dualPort), 'ping', 'an IPv4 client reaches a dual-stack listener');
  await t.throwsAsync(proxy(t, 'native', [{ host: '0.0.0.0', port: dualPort }]).start(), { instanceOf: PortConflictError });
  const only = proxy(t, 'native', [{ host: '::', port: 0, ipv6Only: true }], endpoint);
  await only.start();
  const onlyPort = only.addresses()[0]?.port ?? 0;
  const v4 = proxy(t, 'native', [{ host: '0.0.0.0', port: onlyPort }], endpoint);
  await v4.start();
  t.is(await echoed('::1', onlyPort), 'ping');
  t.is(await echoed('127.0.0.1', onlyPort), 'ping');
});
