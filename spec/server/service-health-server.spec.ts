import net from 'node:net';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { ClosedError, PortConflictError } from '../../lib/errors.js';
import { ServiceHealthServer, serviceHealthReply } from '../../lib/server/service-health-server.js';
import type { ServiceHealth } from '../../lib/server/service-health-server.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { freePort, tcpRefused } from '../helpers/backends.js';
import { get } from './fixture.js';

const ip = loopbackBlock(160);

/** A health check of `shop/web` on ip(host):port whose answer the test sets through `state`. */
async function startCheck(t: ExecutionContext, hosts: string[], state: { health: ServiceHealth }, port?: number): Promise<{ server: ServiceHealthServer; port: number }> {
  const p = port ?? (await freePort(hosts[0]));
  const server = new ServiceHealthServer({ namespace: 'shop', name: 'web', port: p, hosts, health: () => state.health });
  t.teardown(() => server.destroy());
  await server.start();
  return { server, port: p };
}

test("kube-proxy's reply: tab-indented JSON without a trailing newline; 200 only with local endpoints and a healthy proxy", (t) => {
  const ok = serviceHealthReply('shop', 'web', { localEndpoints: 2, serviceProxyHealthy: true });
  t.is(ok.status, 200);
  t.is(ok.contentType, 'application/json');
  t.is(ok.body, '{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "web"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}');
  t.is(serviceHealthReply('shop', 'web', { localEndpoints: 0, serviceProxyHealthy: true }).status, 503);
  t.is(serviceHealthReply('shop', 'web', { localEndpoints: 3, serviceProxyHealthy: false }).status, 503);
  t.deepEqual(JSON.parse(serviceHealthReply('shop', 'web', { localEndpoints: 3, serviceProxyHealthy: false }).body), {
    service: { namespace: 'shop', name: 'web' },
    localEndpoints: 3,
    serviceProxyHealthy: false,
  });
});

test("over HTTP: status and body follow the health at every request, with kube-proxy's headers", async (t) => {
  const state = { health: { localEndpoints: 1, serviceProxyHealthy: true } };
  const { port } = await startCheck(t, [ip(1)], state);
  const url = `http://${ip(1)}:${port}/`;
  const first = await get(url);
  t.is(first.status, 200);
  t.is(first.headers['content-type'], 'application/json');
  t.is(first.headers['x-content-type-options'], 'nosniff');
  t.deepEqual(JSON.parse(first.body), { service: { namespace: 'shop', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: true });
  state.health = { localEndpoints: 0, serviceProxyHealthy: true };
  const none = await get(url);
  t.is(none.status, 503);
  t.is(JSON.parse(none.body).localEndpoints, 0);
  state.health = { localEndpoints: 4, serviceProxyHealthy: false };
  const sick = await get(url);
  t.is(sick.status, 503);
  t.false(JSON.parse(sick.body).serviceProxyHealthy);
});

test("any path and method get the same answer, as kube-proxy's handler is not a router; HEAD has no body", async (t) => {
  const state = { health: { localEndpoints: 1, serviceProxyHealthy: true } };
  const { port } = await startCheck(t, [ip(2)], state);
  for (const path of ['/', '/healthz', '/anything?probe=1']) {
    const r = await get(`http://${ip(2)}:${port}${path}`);
    t.is(r.status, 200, path);
    t.is(JSON.parse(r.body).localEndpoints, 1, path);
  }
  t.is((await get(`http://${ip(2)}:${port}/`, 'POST')).status, 200);
  const head = await get(`http://${ip(2)}:${port}/`, 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
});

test('listens on every given address; a port another socket holds rejects with PortConflictError and leaves nothing open; a later start succeeds', async (t) => {
  const port = await freePort(ip(4));
  // Someone else holds the port on the second address.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ host: ip(4), port }, resolve));
  const state = { health: { localEndpoints: 1, serviceProxyHealthy: true } };
  const server = new ServiceHealthServer({ namespace: 'shop', name: 'web', port, hosts: [ip(3), ip(4)], health: () => state.health });
  t.teardown(() => server.destroy());
  const err = await t.throwsAsync(server.start(), { instanceOf: PortConflictError });
  t.is(err?.port, port);
  t.true(await tcpRefused(ip(3), port), 'the address bound before the failure is closed again');
  t.deepEqual(server.addresses(), []);

  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  await server.start();
  t.deepEqual(server.addresses().sort(), [`${ip(3)}:${port}`, `${ip(4)}:${port}`]);
  t.is((await get(`http://${ip(3)}:${port}/`)).status, 200);
  t.is((await get(`http://${ip(4)}:${port}/`)).status, 200);
});

test('close() stops listening and is idempotent; start() after close rejects with ClosedError', async (t) => {
  const state = { health: { localEndpoints: 1, serviceProxyHealthy: true } };
  const { server, port } = await startCheck(t, [ip(5)], state);
  t.is((await get(`http://${ip(5)}:${port}/`)).status, 200);
  await Promise.all([server.close(), server.close()]);
  t.true(await tcpRefused(ip(5), port));
  await t.throwsAsync(server.start(), { instanceOf: ClosedError });
  server.destroy();
});

test('close() releases the port before it returns: a new check binds the same port at once', async (t) => {
  // Every address (no host): Node.js binds at once, without the lookup a host name or IP would take.
  const port = await freePort('0.0.0.0');
  const first = new ServiceHealthServer({ namespace: 'shop', name: 'web', port, hosts: undefined, health: () => ({ localEndpoints: 1, serviceProxyHealthy: true }) });
  t.teardown(() => first.destroy());
  await first.start();
  const closing = first.close();
  const next = new ServiceHealthServer({ namespace: 'shop', name: 'web', port, hosts: undefined, health: () => ({ localEndpoints: 7, serviceProxyHealthy: true }) });
  t.teardown(() => next.destroy());
  await next.start();
  await closing;
  t.is(JSON.parse((await get(`http://127.0.0.1:${port}/`)).body).localEndpoints, 7);
});
