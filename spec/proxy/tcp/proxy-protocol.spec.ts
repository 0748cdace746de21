import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import type { ProxyProtocolVersion } from '../../../lib/model/proxy-protocol-annotation.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import type { Portal } from '../../../lib/proxy/tcp/connection-policy.js';
import { TcpProxySocket } from '../../../lib/proxy/tcp/tcp-proxy-socket.js';
import { installed, startHaproxy, startNginx } from '../../helpers/proxy-protocol-servers.js';
import type { ProxyAwareServer } from '../../helpers/proxy-protocol-servers.js';
import { waitFor } from '../../helpers/wait-for.js';

const spn = servicePortName('default', 'pp', 'http');

async function proxyTo(t: ExecutionContext, host: string, port: number, version: ProxyProtocolVersion, portals?: Portal[]): Promise<{ proxy: TcpProxySocket; port: number }> {
  const balancer = new RoundRobinBalancer();
  balancer.newService(spn, { type: 'None', timeoutSeconds: 0 });
  balancer.updateEndpoints(spn, [makeEndpoint(host, port)]);
  const proxy = new TcpProxySocket({
    spn,
    listen: [{ host, port: 0 }],
    balancer,
    backoff: new EndpointBackoff(),
    policy: { proxyProtocol: version, ...(portals ? { portals } : {}) },
  });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  return { proxy, port: proxy.addresses()[0]!.port };
}

/** An HTTP/1.0 GET through host:port: the body, and the client's own address and port. */
function get(host: string, port: number): Promise<{ body: string; local: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let data = '';
    let local = '';
    let localPort = 0;
    s.setTimeout(10_000, () => s.destroy(new Error('no answer')));
    s.on('connect', () => {
      local = s.localAddress!;
      localPort = s.localPort!;
      s.write('GET / HTTP/1.0\r\nHost: x\r\n\r\n');
    });
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', reject);
    s.on('end', () => {
      const at = data.indexOf('\r\n\r\n');
      if (!data.startsWith('HTTP/1.') || at < 0) reject(new Error(`not an HTTP answer: ${JSON.stringify(data)}`));
      else resolve({ body: data.slice(at + 4), local, localPort });
      s.end();
    });
  });
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

const servers: Array<[string, string, (t: ExecutionContext) => Promise<ProxyAwareServer>]> = [
  ['nginx', 'nginx', startNginx],
  ['HAProxy', 'haproxy', startHaproxy],
];

// Debian's nginx-light and haproxy; CI installs them (.ci/run), and with CI=true these tests must run.
const mustRun = process.env['CI'] === 'true';

for (const [name, binary, start] of servers) {
  const serverTest = installed(binary) || mustRun ? test : test.skip;
  for (const version of ['v1', 'v2'] as const) {
    serverTest(`${name} reads the client's address and port and the portal from a ${version} header, over IPv4 and IPv6`, async (t) => {
      const server = await start(t);
      for (const [host, port, portal] of [
        ['127.0.0.1', server.port4, { host: '10.96.7.8', port: 8080 }],
        ['::1', server.port6, { host: 'fd00:96::7', port: 8443 }],
      ] as const) {
        // The portal of the other family is not used: the header has one family.
        const other = host === '::1' ? { host: '10.96.7.8', port: 8080 } : { host: 'fd00:96::7', port: 8443 };
        const { port: proxyPort } = await proxyTo(t, host, port, version, [other, portal]);
        const answer = await get(host, proxyPort);
        t.is(answer.body, `${answer.local}:${answer.localPort} ${portal.host}:${portal.port}`, `${bracket(host)} ${version}`);
        // Without portals: the address the connection was accepted on.
        const { port: plainPort } = await proxyTo(t, host, port, version);
        const plain = await get(host, plainPort);
        t.is(plain.body, `${plain.local}:${plain.localPort} ${host}:${plainPort}`);
      }
    });
  }
}

/** A raw TCP server recording the first bytes of each connection (up to `upTo`); ends when the peer does. */
async function recorder(t: ExecutionContext, host = '127.0.0.1'): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = net.createServer((s) => {
    const i = received.push(Buffer.alloc(0)) - 1;
    s.on('data', (d: Buffer) => (received[i] = Buffer.concat([received[i]!, d])));
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  t.teardown(() => server.close());
  return { port: (server.address() as AddressInfo).port, received };
}

test('the header precedes the client bytes, even those sent at once', async (t) => {
  const rec = await recorder(t);
  const { proxy, port } = await proxyTo(t, '127.0.0.1', rec.port, 'v2', [{ host: '10.96.0.9', port: 80 }]);
  const s = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => s.destroy());
  // Written before the connection is even established: it waits in the proxy's accepted socket.
  s.write('first bytes');
  const localPort = await new Promise<number>((resolve) => s.once('connect', () => resolve(s.localPort!)));
  await waitFor('everything arrived', () => rec.received[0]?.includes('first bytes'));
  const got = rec.received[0]!;
  const header = V2ProxyProtocol.parse(new Uint8Array(got));
  const address = header.proxyAddress as unknown as { sourcePort: number; destinationPort: number; sourceAddress: { address: number[] }; destinationAddress: { address: number[] } };
  t.deepEqual([...address.sourceAddress.address], [127, 0, 0, 1]);
  t.is(address.sourcePort, localPort);
  t.deepEqual([...address.destinationAddress.address], [10, 96, 0, 9]);
  t.is(address.destinationPort, 80);
  // 16 bytes of fixed header and 12 of IPv4 addresses, then the client's bytes and nothing else.
  t.is(got.subarray(28).toString(), 'first bytes');
  t.is(proxy.stats.bytesIn, 'first bytes'.length);
});

test('v1: one text line, then the client bytes', async (t) => {
  const rec = await recorder(t);
  const { port } = await proxyTo(t, '127.0.0.1', rec.port, 'v1');
  const s = net.connect({ host: '127.0.0.1', port });
  t.teardown(() => s.destroy());
  s.write('hello');
  const localPort = await new Promise<number>((resolve) => s.once('connect', () => resolve(s.localPort!)));
  await waitFor('everything arrived', () => rec.received[0]?.includes('hello'));
  t.is(rec.received[0]!.toString(), `PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${port}\r\nhello`);
  t.true(V1ProxyProtocol.isValidProtocolSignature(rec.received[0]!.toString()));
});

test('an endpoint that closes at once crashes nothing; the port goes on serving', async (t) => {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  // Resets every connection as soon as it is accepted, before or while the header arrives.
  const rude = net.createServer((s) => {
    accepted++;
    s.on('error', () => {});
    if (accepted % 2 === 0) s.resetAndDestroy();
    else s.destroy();
  });
  await new Promise<void>((resolve) => rude.listen({ host: '127.0.0.1', port: 0 }, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    rude.close();
  });
  const { proxy, port } = await proxyTo(t, '127.0.0.1', (rude.address() as AddressInfo).port, 'v2');
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('connect', () => s.write(Buffer.alloc(100_000, 1)));
      s.on('close', () => resolve());
      s.setTimeout(10_000, () => s.destroy());
    });
  }
  await waitFor('every connection is finished', () => proxy.connectionCount() === 0 && proxy.stats.active === 0, 10_000);
  t.is(proxy.stats.total, 20);
  t.true(accepted >= 20);
});
