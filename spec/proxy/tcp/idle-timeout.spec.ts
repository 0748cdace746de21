import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { TCP_IDLE_TIMEOUT_ANNOTATION } from '../../../lib/model/tcp-idle-timeout-annotation.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import { TcpProxySocket } from '../../../lib/proxy/tcp/tcp-proxy-socket.js';
import { loopbackBlock } from '../../helpers/addresses.js';
import { serviceYaml, sliceYaml, startAgent } from '../../helpers/agent-fixture.js';
import { tcpEcho } from '../../helpers/backends.js';
import { waitFor } from '../../helpers/wait-for.js';

const spn = servicePortName('default', 'idle', 'p');
const IDLE_MS = 300;

/** A backend that accepts and reads but never answers; it records what its peers did. */
async function mute(t: ExecutionContext): Promise<{ port: number; ended: () => number; closed: () => number }> {
  let ended = 0;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('end', () => ended++);
    s.on('close', () => {
      closed++;
      sockets.delete(s);
    });
    s.resume();
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, ended: () => ended, closed: () => closed };
}

async function proxyTo(t: ExecutionContext, port: number, idleTimeoutMs = IDLE_MS): Promise<{ proxy: TcpProxySocket; port: number }> {
  const balancer = new RoundRobinBalancer();
  balancer.newService(spn, { type: 'None', timeoutSeconds: 0 });
  balancer.updateEndpoints(spn, [makeEndpoint('127.0.0.1', port)]);
  const proxy = new TcpProxySocket({ spn, listen: [{ host: '127.0.0.1', port: 0 }], balancer, backoff: new EndpointBackoff(), idleTimeoutMs });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  return { proxy, port: proxy.addresses()[0]!.port };
}

interface Client {
  socket: net.Socket;
  ended(): boolean;
  closed(): boolean;
  received(): string;
}

function connect(t: ExecutionContext, port: number, host = '127.0.0.1', allowHalfOpen = false): Promise<Client> {
  return new Promise((resolve, reject) => {
    let ended = false;
    let closed = false;
    let received = '';
    const socket = net.connect({ host, port, allowHalfOpen });
    t.teardown(() => socket.destroy());
    socket.on('data', (d: Buffer) => (received += d.toString()));
    socket.on('end', () => (ended = true));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, ended: () => ended, closed: () => closed, received: () => received }));
    socket.once('error', reject);
  });
}

test('a backend that accepts and never answers: both sides get a FIN after the idle timeout', async (t) => {
  const backend = await mute(t);
  const { proxy, port } = await proxyTo(t, backend.port);
  const client = await connect(t, port);
  client.socket.write('request nobody answers');
  await waitFor('the client sees the end', () => client.ended() && client.closed(), 10_000);
  await waitFor('the backend sees the end', () => backend.ended() === 1, 10_000);
  t.is(proxy.stats.tcpIdleTimeouts, 1);
  // The backend never closes its side: the proxy lets go of it one sweep later all the same.
  await waitFor('the connection is gone', () => proxy.connectionCount() === 0 && proxy.stats.active === 0, 10_000);
});

test('a client that goes silent (and never sent a byte) is closed after the idle timeout', async (t) => {
  const backend = await tcpEcho();
  t.teardown(() => backend.close());
  const { proxy, port } = await proxyTo(t, backend.port);
  const client = await connect(t, port);
  await waitFor('the client sees the end', () => client.ended() && client.closed(), 10_000);
  t.is(proxy.stats.tcpIdleTimeouts, 1);
});

test('a peer that ignores the FIN is closed one sweep later', async (t) => {
  const backend = await mute(t);
  const { proxy, port } = await proxyTo(t, backend.port);
  // allowHalfOpen: this client reads our FIN and never sends its own.
  const client = await connect(t, port, '127.0.0.1', true);
  await waitFor('the FIN', () => client.ended(), 10_000);
  await waitFor('the proxy lets go of both sockets', () => proxy.connectionCount() === 0 && proxy.stats.active === 0, 10_000);
  // Its end of the connection is gone: what the client sends now is answered with a RST.
  // (After EOF the client no longer reads: it learns of the RST on its next write.)
  await waitFor(
    'the client is reset',
    () => {
      if (!client.closed()) client.socket.write('anyone?');
      return client.closed();
    },
    10_000,
    100,
  );
  t.is(proxy.stats.tcpIdleTimeouts, 1);
});

test('an active connection is not closed; it is once it goes quiet', async (t) => {
  const backend = await tcpEcho();
  t.teardown(() => backend.close());
  const { proxy, port } = await proxyTo(t, backend.port);
  const client = await connect(t, port);
  // Traffic every IDLE_MS / 3 for five timeouts, each byte echoed before the next is sent.
  for (let i = 0; i < 15; i++) {
    client.socket.write('.');
    await waitFor('the echo', () => client.received().length === i + 1);
    await new Promise((r) => setTimeout(r, IDLE_MS / 3)); // paces the traffic; not a synchronisation
  }
  t.false(client.ended());
  t.is(proxy.stats.tcpIdleTimeouts, 0);
  t.is(proxy.connectionCount(), 1);
  await waitFor('closed once quiet', () => client.closed(), 10_000);
  t.is(proxy.stats.tcpIdleTimeouts, 1);
});

test('setIdleTimeout(0) turns it off for established connections too', async (t) => {
  const backend = await tcpEcho();
  t.teardown(() => backend.close());
  const { proxy, port } = await proxyTo(t, backend.port, 60_000);
  const client = await connect(t, port);
  client.socket.write('x');
  await waitFor('the echo', () => client.received() === 'x');
  proxy.setIdleTimeout(IDLE_MS);
  await waitFor('closed under the shorter timeout', () => client.closed(), 10_000);
  proxy.setIdleTimeout(0);
  t.is(proxy.idleTimeoutMs(), 0);
  const other = await connect(t, port);
  // Several sweeps' worth of silence would have closed it.
  await new Promise((r) => setTimeout(r, IDLE_MS * 3)); // the silence under test; nothing to poll for
  t.false(other.ended());
  t.is(proxy.stats.tcpIdleTimeouts, 1);
});

const ip = loopbackBlock(212);

function annotated(yaml: string, value: string): string {
  return yaml.replace('metadata:\n', `metadata:\n  annotations:\n    ${TCP_IDLE_TIMEOUT_ANNOTATION}: "${value}"\n`);
}

test('the Service annotation overrides --tcp-idle-timeout, both ways, and a bad value keeps the last good one', async (t) => {
  const backend = await mute(t);
  const eps = (svc: string): string => sliceYaml(svc, `${svc}-0`, [{ name: 'p', port: backend.port }], [{ ip: '127.0.0.1' }]);
  const fx = await startAgent(
    t,
    {
      // The flag: 300 ms. "never" says 0; "short" says 300 ms while the flag is off in the second agent below.
      'never.yaml': annotated(serviceYaml('never', ip(1), [{ name: 'p', port: 7001 }]), '0'),
      'plain.yaml': serviceYaml('plain', ip(2), [{ name: 'p', port: 7001 }]),
      'eps.yaml': eps('never') + '---\n' + eps('plain'),
    },
    { tcpIdleTimeoutMs: IDLE_MS },
  );
  await waitFor('both listening', () => fx.agent.status().filter((p) => p.listening.length > 0).length === 2, 10_000);
  const never = await connect(t, 7001, ip(1));
  const plain = await connect(t, 7001, ip(2));
  await waitFor('the unannotated connection closed by the flag', () => plain.closed(), 10_000);
  // Same silence, same age: the annotated one is still open.
  t.false(never.ended());

  // A bad value: one error, and the Service keeps its last good state (the annotation "0").
  await fx.write('never.yaml', annotated(serviceYaml('never', ip(1), [{ name: 'p', port: 7001 }]), 'soon'));
  await new Promise((r) => setTimeout(r, IDLE_MS * 3)); // several sweeps of silence; nothing to poll for
  t.false(never.ended());

  // Now annotated with a short timeout: the open connection is closed by it.
  await fx.write('never.yaml', annotated(serviceYaml('never', ip(1), [{ name: 'p', port: 7001 }]), '200ms'));
  await waitFor('closed by the annotation', () => never.closed(), 10_000);
});
