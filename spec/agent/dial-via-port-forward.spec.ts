import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { PortForwardConnector } from '../../lib/proxy/port-forward/port-forward-connector.js';
import type { StatusDocument } from '../../lib/server/status-document.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { tcpName, tcpRequest } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor, waitUntilSteady } from '../helpers/wait-for.js';
import { get, startMetricsServer } from '../server/fixture.js';

// --dial-via port-forward, the whole path: the real client-node informers and PortForward against
// the test API server, whose pods/portforward endpoint speaks v4.channel.k8s.io over a real
// WebSocket and connects to loopback backends standing in for the pods. The endpoints' own
// addresses are in TEST-NET-1 (192.0.2.0/24), which nothing here can reach: every byte that
// arrives went through the API server.

const ip = loopbackBlock(213);
const POD_PORT = 8080;

function service(name: string, clusterIP: string, port: number, extra: Record<string, unknown> = {}, ports?: unknown[]): KubeObject {
  return {
    metadata: { namespace: 'shop', name },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ports: ports ?? [{ name: 'http', port, protocol: 'TCP', targetPort: POD_PORT }], sessionAffinity: 'None', ...extra },
    status: { loadBalancer: {} },
  };
}

/** One endpoint per pod name (undefined: an endpoint without targetRef), 192.0.2.<i+1>. */
function slice(name: string, svc: string, pods: Array<string | undefined>, ports: unknown[] = [{ name: 'http', port: POD_PORT, protocol: 'TCP' }]): KubeObject {
  return {
    metadata: { namespace: 'shop', name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: pods.map((pod, i) => ({
      addresses: [`192.0.2.${i + 1}`],
      conditions: { ready: true },
      nodeName: 'node-a',
      ...(pod !== undefined ? { targetRef: { kind: 'Pod', namespace: 'shop', name: pod } } : {}),
    })),
    ports,
  };
}

async function backend<T extends Backend>(t: ExecutionContext, b: Promise<T>): Promise<T> {
  const started = await b;
  t.teardown(() => started.close());
  return started;
}

async function start(t: ExecutionContext, seed: (api: TestApiServer) => void, dialTimeoutsMs: readonly number[] = [10_000, 10_000, 10_000]): Promise<{ api: TestApiServer; agent: Agent }> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  seed(api);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const source = new KubeSource({ kubeConfig, backoff: { initialMs: 50, maxMs: 400 } });
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 500, minSyncPeriodMs: 0, nodeName: 'node-a' },
    source,
    // Generous attempts: on a machine busy with other tests a TLS handshake can take a second, and
    // a timed-out attempt would fail over to the other pod. Refusals (404, 403) still fail at once.
    connector: new PortForwardConnector({ kubeConfig, dialTimeoutsMs }),
  });
  t.teardown(() => agent.destroy());
  await agent.start();
  return { api, agent };
}

async function names(host: string, port: number, n: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) seen.push((await tcpRequest(host, port)).toString());
  return seen;
}

test('round robin over two pods, each connection its own forwarded stream, counted in /status', async (t) => {
  const a = await backend(t, tcpName('a'));
  const b = await backend(t, tcpName('b'));
  const { api, agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'web-a', { [POD_PORT]: a.port });
    api.portForwards.setPod('shop', 'web-b', { [POD_PORT]: b.port });
    api.create('services', service('web', ip(1), 7000));
    api.create('endpointslices', slice('web-1', 'web', ['web-a', 'web-b']));
  });
  const got = await names(ip(1), 7000, 4);
  t.deepEqual([...got].sort(), ['a', 'a', 'b', 'b'], JSON.stringify([api.portForwards.requests, agent.status()[0]?.stats]));
  const forwards = api.portForwards.requests;
  t.is(forwards.length, 4, 'one port-forward per connection');
  t.true(forwards.every((f) => f.status === 101 && f.protocol === 'v4.channel.k8s.io' && f.port === POD_PORT && f.namespace === 'shop'));
  t.deepEqual([...new Set(forwards.map((f) => f.pod))].sort(), ['web-a', 'web-b']);
  await waitFor('streams closed', () => api.portForwards.openStreams === 0);

  const { url } = await startMetricsServer(t, agent, false);
  const doc = JSON.parse((await get(`${url}/status`)).body) as StatusDocument;
  const port = doc.servicePorts.find((p) => p.servicePort === 'shop/web:http')!;
  t.like(port.stats, { total: 4, active: 0, dialFailures: 0, dialGiveUps: 0, bytesOut: 4 });
  t.deepEqual(
    port.endpoints.map((e) => [e.endpoint, e.total]),
    [
      ['192.0.2.1:8080', 2],
      ['192.0.2.2:8080', 2],
    ],
  );
});

test('a pod whose forward fails (gone: 404, forbidden: 403) is a dial failure: the next pod answers', async (t) => {
  const a = await backend(t, tcpName('a'));
  const { api, agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'web-a', { [POD_PORT]: a.port });
    // web-b is not a pod the API server knows: 404. web-c is refused: 403.
    api.portForwards.setPod('shop', 'web-c', { [POD_PORT]: a.port });
    api.portForwards.refuse('shop', 'web-c', 403);
    api.create('services', service('web', ip(2), 7000));
    api.create('endpointslices', slice('web-1', 'web', ['web-a', 'web-b', 'web-c']));
  });
  t.deepEqual(await names(ip(2), 7000, 6), ['a', 'a', 'a', 'a', 'a', 'a']);
  const statuses = new Map(api.portForwards.requests.map((f) => [f.pod, f.status]));
  t.is(statuses.get('web-b'), 404);
  t.is(statuses.get('web-c'), 403);
  const stats = agent.status().find((p) => p.spn === 'shop/web:http')!.stats!;
  t.true(stats.dialFailures >= 2, `dial failures: ${stats.dialFailures}`);
  t.true(stats.dialRetries >= 2);
  t.is(stats.dialGiveUps, 0);
  t.true(stats.endpoint('192.0.2.2:8080').dialFailures >= 1);
  t.true(stats.endpoint('192.0.2.3:8080').dialFailures >= 1);
});

test('a forward the API server never answers times out and fails over to the next pod', async (t) => {
  const a = await backend(t, tcpName('a'));
  const { api, agent } = await start(
    t,
    (api) => {
      api.portForwards.setPod('shop', 'web-a', { [POD_PORT]: a.port });
      api.portForwards.setPod('shop', 'web-h', { [POD_PORT]: a.port });
      api.portForwards.refuse('shop', 'web-h', 'hang');
      api.create('services', service('slow', ip(11), 7000));
      // web-h first in key order (192.0.2.1): the first connection tries it first.
      api.create('endpointslices', slice('slow-1', 'slow', ['web-h', 'web-a']));
    },
    // Long enough for a forward to a live pod on a loaded machine, far below the hanging one's 10 s.
    [2000, 10_000, 10_000],
  );
  t.deepEqual(await names(ip(11), 7000, 3), ['a', 'a', 'a']);
  t.true(
    api.portForwards.requests.some((r) => r.pod === 'web-h' && r.status === 0),
    'the hanging pod was tried',
  );
  const stats = agent.status()[0]!.stats!;
  t.true(stats.endpoint('192.0.2.1:8080').dialFailures >= 1);
  t.is(stats.dialGiveUps, 0);
});

test('ClientIP affinity keeps a client on one pod', async (t) => {
  const a = await backend(t, tcpName('a'));
  const b = await backend(t, tcpName('b'));
  await start(t, (api) => {
    api.portForwards.setPod('shop', 'web-a', { [POD_PORT]: a.port });
    api.portForwards.setPod('shop', 'web-b', { [POD_PORT]: b.port });
    api.create('services', service('sticky', ip(3), 7000, { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } }));
    api.create('endpointslices', slice('sticky-1', 'sticky', ['web-a', 'web-b']));
  });
  const got = await names(ip(3), 7000, 6);
  t.is(new Set(got).size, 1, got.join());
});

/** Echoes what it reads and ends once it has echoed `total` bytes (it never sees a client FIN through v4). */
async function echoUpTo(t: ExecutionContext, total: number): Promise<Backend> {
  const sockets = new Set<net.Socket>();
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let seen = 0;
    s.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      s.write(chunk);
      if (seen >= total) s.end();
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const b: Backend = {
    host: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    name: 'echo',
    count: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  t.teardown(() => b.close());
  return b;
}

test('1 MiB goes through byte-exact both ways', async (t) => {
  const size = 1 << 20;
  const echo = await echoUpTo(t, size);
  const { api } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'echo-0', { [POD_PORT]: echo.port });
    api.create('services', service('echo', ip(4), 7000));
    api.create('endpointslices', slice('echo-1', 'echo', ['echo-0']));
  });
  const payload = randomBytes(size);
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: ip(4), port: 7000 });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('no EOF within 20 s'));
    }, 20_000);
    s.on('connect', () => s.write(payload));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    s.on('error', reject);
  });
  t.is(received.length, size);
  t.true(received.equals(payload), 'the bytes that came back are the bytes sent');
  await waitFor('stream closed', () => api.portForwards.openStreams === 0);
});

test("client half-close: the reply sent after the client's FIN still arrives, then the end", async (t) => {
  // Answers a request line with its upper case and closes: the client has half-closed by then.
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let line = '';
    s.on('data', (c: Buffer) => {
      line += c.toString();
      if (line.endsWith('\n')) s.end(line.trim().toUpperCase());
    });
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const { api, agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'upper-0', { [POD_PORT]: (server.address() as net.AddressInfo).port });
    api.create('services', service('upper', ip(5), 7000));
    api.create('endpointslices', slice('upper-1', 'upper', ['upper-0']));
  });
  // tcpRequest writes and half-closes at once, then reads to EOF.
  t.is((await tcpRequest(ip(5), 7000, 'hello\n')).toString(), 'HELLO');
  await waitFor('stream and connection closed', () => api.portForwards.openStreams === 0 && agent.status()[0]!.stats!.active === 0);
});

test('endpoints without a Pod targetRef and UDP ports are skipped; the rest is served', async (t) => {
  const a = await backend(t, tcpName('a'));
  const { agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'web-a', { [POD_PORT]: a.port });
    api.create(
      'services',
      service('mixed', ip(6), 7000, {}, [
        { name: 'http', port: 7000, protocol: 'TCP', targetPort: POD_PORT },
        { name: 'dns', port: 7053, protocol: 'UDP', targetPort: 53 },
      ]),
    );
    api.create(
      'endpointslices',
      slice(
        'mixed-1',
        'mixed',
        [undefined, 'web-a'],
        [
          { name: 'http', port: POD_PORT, protocol: 'TCP' },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      ),
    );
  });
  const ports = agent.status();
  t.deepEqual(
    ports.map((p) => [p.spn, p.protocol]),
    [['shop/mixed:http', 'TCP']],
  );
  t.deepEqual(ports[0]!.endpoints, ['192.0.2.2:8080'], 'the endpoint without a pod is not balanced over');
  t.deepEqual(await names(ip(6), 7000, 3), ['a', 'a', 'a']);
});

test("the kubelet's error channel (nothing listens on the pod's port) resets that client", async (t) => {
  const { api } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'closed-0', {});
    api.create('services', service('closed', ip(7), 7000));
    api.create('endpointslices', slice('closed-1', 'closed', ['closed-0']));
  });
  const err = await t.throwsAsync(tcpRequest(ip(7), 7000, 'x'));
  t.is((err as NodeJS.ErrnoException).code, 'ECONNRESET');
  t.is(api.portForwards.requests[0]?.status, 101);
});

function pattern(offset: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (offset + i) % 251;
  return b;
}

const SIZE = 64 * 2 ** 20;
const CHUNK = 2 ** 20;

test.serial('backpressure through the forward: a pod that does not read holds the client back; then 64 MiB arrive byte-exact', async (t) => {
  let podSide: net.Socket | undefined;
  const server = net.createServer((s) => {
    s.pause();
    podSide = s;
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        podSide?.destroy();
        server.close(() => resolve());
      }),
  );
  const { agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'sink-0', { [POD_PORT]: (server.address() as net.AddressInfo).port });
    api.create('services', service('sink', ip(8), 7000));
    api.create('endpointslices', slice('sink-1', 'sink', ['sink-0']));
  });
  const client = net.connect({ host: ip(8), port: 7000 });
  t.teardown(() => void client.destroy());
  let sent = 0;
  const pump = (): void => {
    while (sent < SIZE) {
      const ok = client.write(pattern(sent, CHUNK));
      sent += CHUNK;
      if (!ok) {
        client.once('drain', pump);
        return;
      }
    }
  };
  client.on('connect', pump);
  const stats = (): number => agent.status()[0]?.stats?.bytesIn ?? 0;
  const heldBack = await waitUntilSteady('bytes read from the client', stats);
  t.log(`while the pod was not reading the proxy read ${(heldBack / 2 ** 20).toFixed(2)} MiB of ${SIZE / 2 ** 20} MiB from the client`);
  t.true(heldBack < SIZE / 2, `read ${heldBack} bytes`);
  const s = await waitFor('pod connection', () => podSide);
  let got = 0;
  let mismatches = 0;
  s.on('data', (c: Buffer) => {
    if (!c.equals(pattern(got, c.length))) mismatches++;
    got += c.length;
  });
  s.resume();
  await waitFor('all bytes at the pod', () => got === SIZE, 30_000);
  t.is(mismatches, 0);
});

test.serial('backpressure the other way: a client that does not read holds the pod back; then 64 MiB arrive byte-exact', async (t) => {
  let written = 0;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    const pump = (): void => {
      while (written < SIZE) {
        const ok = s.write(pattern(written, CHUNK));
        written += CHUNK;
        if (!ok) {
          s.once('drain', pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'source-0', { [POD_PORT]: (server.address() as net.AddressInfo).port });
    api.create('services', service('source', ip(9), 7000));
    api.create('endpointslices', slice('source-1', 'source', ['source-0']));
  });
  const client = net.connect({ host: ip(9), port: 7000 });
  t.teardown(() => void client.destroy());
  client.pause();
  const stats = (): number => agent.status()[0]?.stats?.bytesOut ?? 0;
  const heldBack = await waitUntilSteady('bytes sent to the client', stats);
  t.log(`while the client was not reading the proxy passed on ${(heldBack / 2 ** 20).toFixed(2)} MiB of ${SIZE / 2 ** 20} MiB; the pod had written ${(written / 2 ** 20).toFixed(0)} MiB`);
  t.true(heldBack < SIZE / 2, `passed on ${heldBack} bytes`);
  t.true(written < SIZE, 'the pod was held back too');
  let got = 0;
  let mismatches = 0;
  const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
  client.on('data', (c: Buffer) => {
    if (!c.equals(pattern(got, c.length))) mismatches++;
    got += c.length;
  });
  client.resume();
  await ended;
  t.is(got, SIZE);
  t.is(mismatches, 0);
});

test('drain: a forwarded connection in flight finishes, new ones are refused, then drain returns', async (t) => {
  const size = 64 * 1024;
  const echo = await echoUpTo(t, size);
  const { api, agent } = await start(t, (api) => {
    api.portForwards.setPod('shop', 'echo-0', { [POD_PORT]: echo.port });
    api.create('services', service('drained', ip(10), 7000));
    api.create('endpointslices', slice('drained-1', 'drained', ['echo-0']));
  });
  const client = net.connect({ host: ip(10), port: 7000 });
  t.teardown(() => void client.destroy());
  let got = 0;
  client.on('data', (c: Buffer) => (got += c.length));
  const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
  client.write(Buffer.alloc(size / 2));
  await waitFor('first half echoed', () => got === size / 2);
  t.is(api.portForwards.openStreams, 1);

  let drained = false;
  const draining = agent.drain(10_000).then(() => (drained = true));
  await waitFor('draining', () => agent.health().draining);
  await t.throwsAsync(tcpRequest(ip(10), 7000, 'x', 2000), undefined, 'the listener is closed');
  t.false(drained, 'drain waits for the forwarded connection');
  client.write(Buffer.alloc(size / 2));
  await ended;
  client.end();
  await draining;
  t.is(got, size);
  await waitFor('stream closed', () => api.portForwards.openStreams === 0);
});
