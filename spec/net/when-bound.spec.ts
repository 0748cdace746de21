import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { whenBound } from '../../lib/net/when-bound.js';

test('resolves once the server listens, and leaves no error listener behind', async (t) => {
  const server = net.createServer();
  t.teardown(() => server.close());
  const before = server.listenerCount('error');
  await whenBound(server, (bound) => server.listen(0, '127.0.0.1', bound));
  t.true(server.listening);
  t.true((server.address() as AddressInfo).port > 0);
  t.is(server.listenerCount('error'), before);
});

test('rejects with the first error before the socket is bound', async (t) => {
  const holder = net.createServer();
  t.teardown(() => holder.close());
  await whenBound(holder, (bound) => holder.listen(0, '127.0.0.1', bound));
  const second = net.createServer();
  t.teardown(() => second.close());
  const err = await t.throwsAsync(whenBound(second, (bound) => second.listen((holder.address() as AddressInfo).port, '127.0.0.1', bound)));
  t.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
  t.false(second.listening);
});
