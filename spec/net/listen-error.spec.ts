import dgram from 'node:dgram';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { ListenError, PortConflictError } from '../../lib/errors.js';
import { listenError } from '../../lib/net/listen-error.js';
import { whenBound } from '../../lib/net/when-bound.js';

test('a TCP port another socket holds gives PortConflictError naming the address', async (t) => {
  const holder = net.createServer();
  t.teardown(() => holder.close());
  await whenBound(holder, (bound) => holder.listen(0, '127.0.0.1', bound));
  const { port } = holder.address() as AddressInfo;
  const second = net.createServer();
  t.teardown(() => second.close());
  const err = await t.throwsAsync(whenBound(second, (bound) => second.listen(port, '127.0.0.1', bound)));
  const mapped = listenError('127.0.0.1', port, err);
  t.true(mapped instanceof PortConflictError);
  t.is(mapped.code, 'KUP_ERR_PORT_CONFLICT');
  t.is(mapped.message, `port conflict: 127.0.0.1:${port} is already in use by another socket`);
  t.is(mapped.cause, err);
});

test('a UDP port another socket holds gives PortConflictError too', async (t) => {
  const holder = dgram.createSocket('udp6');
  t.teardown(() => holder.close());
  await whenBound(holder, (bound) => holder.bind(0, '::1', bound));
  const { port } = holder.address();
  const second = dgram.createSocket('udp6');
  t.teardown(() => second.close());
  const err = await t.throwsAsync(whenBound(second, (bound) => second.bind(port, '::1', bound)));
  const mapped = listenError('::1', port, err);
  t.true(mapped instanceof PortConflictError);
  t.is(mapped.message, `port conflict: [::1]:${port} is already in use by another socket`);
});

test('an address this host does not have gives ListenError with the kernel reason', async (t) => {
  // 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface, so bind fails with EADDRNOTAVAIL.
  const server = net.createServer();
  t.teardown(() => server.close());
  const err = await t.throwsAsync(whenBound(server, (bound) => server.listen(0, '192.0.2.1', bound)));
  t.is((err as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
  const mapped = listenError('192.0.2.1', 0, err);
  t.true(mapped instanceof ListenError);
  t.is(mapped.code, 'KUP_ERR_LISTEN');
  t.regex(mapped.message, /^cannot listen on 192\.0\.2\.1:0: .*EADDRNOTAVAIL/);
});
