import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { DISPATCHER_TRACKING_WORKS, ObservedWatch } from '../../lib/internals/client-node-watch.js';
import { waitFor } from '../helpers/wait-for.js';

test(`the probe finds client-node's per-request dispatcher on Node ${process.versions.node}`, (t) => {
  // The client-node this project installs gives every watch request its own dispatcher through
  // applySecurityAuthentication(): if an upgrade changes that, this fails and says so.
  t.true(DISPATCHER_TRACKING_WORKS);
});

test('stopping a run ends a watch request the API server never answers', async (t) => {
  // An API server that takes the request and never sends headers: client-node alone would hold
  // the connection until its 30 s request timeout.
  const open = new Set<net.Socket>();
  let requests = 0;
  const server = net.createServer((socket) => {
    open.add(socket);
    socket.once('data', () => requests++);
    socket.once('close', () => open.delete(socket));
  });
  t.teardown(() => {
    for (const s of open) s.destroy();
    server.close();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const stop = new AbortController();
  const events: string[] = [];
  const watch = new ObservedWatch(kc, stop.signal, {
    isCurrent: () => !stop.signal.aborted,
    onConnected: () => events.push('connected'),
    onEvent: () => events.push('event'),
    onMalformed: () => events.push('malformed'),
  });
  let done: unknown = 'not yet';
  const watching = watch.watch(
    '/api/v1/services',
    {},
    () => {},
    (err) => (done = err),
  );
  await waitFor('the watch request to arrive', () => requests === 1 && open.size === 1);
  stop.abort();
  await waitFor('the watch connection to close', () => open.size === 0, 10_000);
  const controller = await watching;
  t.true(controller.signal.aborted);
  t.not(done, 'not yet', 'done() was called');
  t.deepEqual(events, []);
});

test('a watch asked for after its run is over makes no request', async (t) => {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: 'http://127.0.0.1:9', skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  const stop = new AbortController();
  stop.abort();
  let authenticated = false;
  const counting = Object.create(kc) as KubeConfig;
  counting.applySecurityAuthentication = async (ctx) => {
    authenticated = true;
    await kc.applySecurityAuthentication(ctx);
  };
  const watch = new ObservedWatch(counting, stop.signal, { isCurrent: () => false, onConnected: () => {}, onEvent: () => {}, onMalformed: () => {} });
  const controller = await watch.watch(
    '/api/v1/services',
    {},
    () => {},
    () => {},
  );
  t.true(controller.signal.aborted);
  t.false(authenticated);
});
