import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { promisify } from 'node:util';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { NativeSessionGroup, udpNativeAvailable, udpNativeUnavailableReason } from '../../lib/internals/udp-native.js';
import type { NativeSessionEvents } from '../../lib/internals/udp-native.js';
import { backendFor, udpEcho } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';
import { newSockets, openSockets } from '../helpers/open-sockets.js';

// The addon itself, driven directly. With CI=true it must be built; elsewhere these are skipped
// (reported as skipped) when it is not.
const mustRun = udpNativeAvailable() || process.env['CI'] === 'true';
if (!mustRun) console.warn(`skipping the native UDP addon specs: ${udpNativeUnavailableReason()} (with CI=true they run, and fail)`);
const nativeTest = mustRun ? test : test.skip;
// Descriptor counts are the process's: those tests run alone, before the others.
const nativeSerialTest = mustRun ? test.serial : test.skip;

interface Recorded {
  readonly events: Array<{ kind: string; id: number; code?: string; msg?: string; from?: string }>;
  readonly handlers: NativeSessionEvents;
}

function recorder(): Recorded {
  const events: Recorded['events'] = [];
  return {
    events,
    handlers: {
      upstreamError: (id, code) => events.push({ kind: 'upstream', id, code }),
      replyError: (id, code) => events.push({ kind: 'reply', id, code }),
      stray: (id, msg, address, port) => events.push({ kind: 'stray', id, msg: msg.toString(), from: `${address}:${port}` }),
    },
  };
}

function group(maxSessions = 16, events = recorder().handlers): NativeSessionGroup {
  const g = NativeSessionGroup.create(events, maxSessions);
  if (g === undefined) throw new Error(`no native UDP data path: ${udpNativeUnavailableReason()}`);
  return g;
}

/** A bound UDP socket (a service's listening socket, or a client), closed in teardown. */
async function bound(t: ExecutionContext, reuseAddr = false): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr });
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  return s;
}

function reply(sock: dgram.Socket, msg: string, port: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no UDP reply within 3000 ms')), 3000);
    sock.once('message', (m: Buffer) => {
      clearTimeout(timer);
      resolve(m.toString());
    });
    sock.send(msg, port, '127.0.0.1');
  });
}

const at = (s: dgram.Socket): { address: string; port: number } => ({ address: '127.0.0.1', port: s.address().port });

nativeTest('a session relays both ways between its client and endpoint, and counts each direction exactly', async (t) => {
  const be = await backendFor(t, udpEcho());
  const listening = await bound(t, true);
  const c = await bound(t);
  const g = group();
  const id = g.open(at(listening), at(c), { address: be.host, port: be.port });
  t.teardown(() => g.close(id));
  t.is(await reply(c, 'hello', listening.address().port), 'hello');
  t.is(await reply(c, 'again!', listening.address().port), 'again!');
  t.like(g.stats(id), { packetsIn: 2, bytesIn: 11, packetsOut: 2, bytesOut: 11 });
  t.is(g.bytesIn, 11);
  t.is(g.bytesOut, 11);
  t.is(g.packetsIn, 2);
  t.is(g.packetsOut, 2);
  // A datagram JavaScript sends counts on the session, not in the group's totals (JavaScript counts it).
  t.is(g.send(id, Buffer.from('from js')), 7);
  await waitFor('the echo of it to come back', () => g.stats(id)?.packetsOut === 3);
  t.like(g.stats(id), { packetsIn: 3, bytesIn: 18 });
  t.is(g.bytesIn, 11);
  const active = g.takeActive();
  t.is(active.length, 2);
  t.is(active[0], id);
  t.true((active[1] as number) >= 0 && (active[1] as number) < 3000);
  t.is(g.takeActive().length, 0, 'nothing moved since');
});

nativeSerialTest('close() releases both sockets; closing twice, or an id never given, says false; a closed id is refused', async (t) => {
  const be = await backendFor(t, udpEcho());
  const listening = await bound(t, true);
  const c = await bound(t);
  const g = group();
  const before = openSockets();
  const id = g.open(at(listening), at(c), { address: be.host, port: be.port });
  const opened = newSockets(before, openSockets());
  t.is(opened.size, 2, 'the reply and upstream sockets');
  t.is(g.size, 1);
  t.true(g.close(id));
  t.false(g.close(id));
  t.false(g.close(id + 12_345));
  t.false(g.close(-1));
  t.is(g.size, 0);
  t.is(g.send(id, Buffer.from('late')), -1);
  t.is(g.stats(id), undefined);
  // The descriptors are closed when libuv has let go of their poll handles, a loop turn later.
  await waitFor('both sockets to close', () => {
    const now = openSockets();
    return [...opened].every(([fd, target]) => now.get(fd) !== target);
  });
  // A new session may take the old one's slot; the old id still names nothing.
  const next = g.open(at(listening), at(c), { address: be.host, port: be.port });
  t.not(next, id);
  t.false(g.close(id));
  t.true(g.close(next));
});

nativeTest('a group holds at most maxSessions; closing one makes room', async (t) => {
  const listening = await bound(t, true);
  const clients = [await bound(t), await bound(t), await bound(t)];
  const g = group(2);
  const endpoint = { address: '127.0.0.1', port: 9 };
  const a = g.open(at(listening), at(clients[0] as dgram.Socket), endpoint);
  const b = g.open(at(listening), at(clients[1] as dgram.Socket), endpoint);
  t.teardown(() => [a, b].forEach((id) => g.close(id)));
  t.throws(() => g.open(at(listening), at(clients[2] as dgram.Socket), endpoint), { code: 'ERR_UDP_NATIVE_SESSION_LIMIT' });
  t.true(g.close(a));
  const c = g.open(at(listening), at(clients[2] as dgram.Socket), endpoint);
  t.true(g.close(c));
});

nativeSerialTest('bad addresses and ports are refused with a message naming them, and open nothing', (t) => {
  const g = group();
  const before = openSockets();
  const ok = { address: '127.0.0.1', port: 9 };
  t.throws(() => g.open({ address: 'localhost', port: 9 }, ok, ok), { code: 'ERR_INVALID_ARG_VALUE', message: /local address/ });
  t.throws(() => g.open(ok, { address: '::1', port: 9 }, ok), { code: 'ERR_INVALID_ARG_VALUE', message: /client address/ });
  t.throws(() => g.open(ok, ok, { address: '300.1.1.1', port: 9 }), { code: 'ERR_INVALID_ARG_VALUE', message: /endpoint address/ });
  t.throws(() => g.open(ok, ok, { address: '127.0.0.1', port: 0 }), { code: 'ERR_INVALID_ARG_TYPE', message: /endpoint port/ });
  t.throws(() => g.open(ok, { address: '127.0.0.1', port: 70_000 }, ok), { code: 'ERR_INVALID_ARG_TYPE', message: /client port/ });
  // An address this host does not have: bind() fails, and both sockets are closed again.
  t.throws(() => g.open({ address: '192.0.2.1', port: 9 }, ok, ok), { code: 'EADDRNOTAVAIL' });
  t.is(newSockets(before, openSockets()).size, 0, 'no socket left open');
  t.is(g.size, 0);
});

nativeTest("an endpoint's ICMP port unreachable is reported as an upstream error of its session", async (t) => {
  const listening = await bound(t, true);
  const c = await bound(t);
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', () => resolve()));
  const deadPort = closed.address().port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const r = recorder();
  const g = group(16, r.handlers);
  const id = g.open(at(listening), at(c), { address: '127.0.0.1', port: deadPort });
  t.teardown(() => g.close(id));
  c.send('anyone?', listening.address().port, '127.0.0.1');
  const event = await waitFor('the upstream error', () => r.events.find((e) => e.kind === 'upstream'));
  t.deepEqual(event, { kind: 'upstream', id, code: 'ECONNREFUSED' });
});

nativeTest("a session's reply socket takes only its client's datagrams; another client's still reach the listening socket", async (t) => {
  const be = await backendFor(t, udpEcho());
  const listening = await bound(t, true);
  const client = await bound(t);
  const other = await bound(t);
  const r = recorder();
  const g = group(16, r.handlers);
  const id = g.open(at(listening), at(client), { address: be.host, port: be.port });
  t.teardown(() => g.close(id));
  const onListening = new Promise<string>((resolve) => listening.once('message', (m: Buffer) => resolve(m.toString())));
  other.send('not yours', listening.address().port, '127.0.0.1');
  t.is(await onListening, 'not yours');
  t.is(await reply(client, 'mine', listening.address().port), 'mine');
  t.deepEqual(r.events, [], 'no stray, no error');
});

test('KUP_UDP_NATIVE=0 turns the native data path off, and says so', async (t) => {
  const moduleUrl = new URL('../../lib/internals/udp-native.js', import.meta.url).href;
  const script = `import(${JSON.stringify(moduleUrl)}).then((m) => console.log(JSON.stringify([m.udpNativeAvailable(), m.udpNativeUnavailableReason()])))`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env: { ...process.env, KUP_UDP_NATIVE: '0' }, timeout: 20_000 });
  t.deepEqual(JSON.parse(stdout) as unknown, [false, 'KUP_UDP_NATIVE=0']);
});
