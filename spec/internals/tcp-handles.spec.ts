import net from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { TCP_HANDLES } from '../../lib/internals/tcp-handles.js';
import type { TcpHandle } from '../../lib/internals/tcp-handles.js';
import { spawnNode } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

const MODULE = new URL('../../lib/internals/tcp-handles.js', import.meta.url).href;
const PROBE = `import(${JSON.stringify(MODULE)}).then((m) => console.log(m.TCP_HANDLES === undefined ? 'net' : 'handles'))`;

test('the probe finds the handles on this Node and using them prints no deprecation warning', async (t) => {
  // --throw-deprecation: any deprecation warning would end the process with an error.
  const p = spawnNode(['--throw-deprecation', '--input-type=module', '-e', PROBE]);
  t.is(await p.exited, 0, p.stderr());
  t.is(p.stdout().trim(), 'handles');
  t.is(p.stderr(), '');
});

test('under --pending-deprecation (where process.binding() would warn) the handles are not used, and nothing is printed', async (t) => {
  const p = spawnNode(['--pending-deprecation', '--input-type=module', '-e', PROBE]);
  t.is(await p.exited, 0, p.stderr());
  t.is(p.stdout().trim(), 'net');
  t.notRegex(p.stderr(), /DEP0111|DeprecationWarning/);
});

test('takeAccepts hands accepted connections over as handles that carry the peer address; a server without a handle is refused', async (t) => {
  const H = TCP_HANDLES;
  if (H === undefined) return t.fail('no TCP handles on this Node');
  const server = net.createServer();
  t.false(
    H.takeAccepts(server, () => {}),
    'not listening yet: nothing to take over',
  );
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  t.teardown(() => server.close());
  const accepted: TcpHandle[] = [];
  t.true(
    H.takeAccepts(server, (error, handle) => {
      if (error === undefined && handle !== undefined) accepted.push(handle);
    }),
  );
  const client = net.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  t.teardown(() => client.destroy());
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await waitFor('the handle to be accepted', () => accepted.length === 1);
  const handle = accepted[0] as TcpHandle;
  t.deepEqual(H.peer(handle), { address: '127.0.0.1', port: client.localPort });
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.on('error', () => {});
  handle.close();
  await closed;
  t.is(accepted.length, 1);
});

test('connect reports a refused port as ECONNREFUSED', async (t) => {
  const H = TCP_HANDLES;
  if (H === undefined) return t.fail('no TCP handles on this Node');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const status = await new Promise<number>((resolve) => {
    const h = H.connect('127.0.0.1', port, (s, handle) => {
      handle.close();
      resolve(s);
    });
    if (typeof h === 'number') resolve(h);
  });
  t.is(H.errorName(status), 'ECONNREFUSED');
});
