import dgram from 'node:dgram';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { udpNativeAvailable, udpNativeUnavailableReason } from '../../lib/internals/udp-native.js';
import { makeEndpoint } from '../../lib/model/endpoint.js';
import type { Endpoint } from '../../lib/model/endpoint.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { UdpSessionHost } from '../../lib/workers/udp-session-host.js';
import { backendFor, udpEcho } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';

// A worker's UDP sessions on both data paths: native (the default where the addon is built) and
// dgram (forced). With CI=true the addon must be there; elsewhere its runs are skipped without it.
const PATHS = ['native', 'dgram'] as const;
type DataPath = (typeof PATHS)[number];
const nativeMissing = !udpNativeAvailable() && process.env['CI'] !== 'true';
if (nativeMissing) console.warn(`skipping the native UDP session host runs: ${udpNativeUnavailableReason()} (with CI=true they run, and fail)`);

function pathTest(title: string, body: (t: ExecutionContext, dataPath: DataPath) => Promise<void>): void {
  for (const dataPath of PATHS) (dataPath === 'native' && nativeMissing ? test.skip : test)(`${dataPath}: ${title}`, (t) => body(t, dataPath));
}

interface Setup {
  host: UdpSessionHost;
  closed: Array<[string, string | undefined]>;
  listening: dgram.Socket;
  client: dgram.Socket;
  replies: string[];
  open(endpoint: Endpoint, first: string): string;
}

/** A host, a service's listening socket (as the agent process holds it) and one client; all closed in teardown. */
async function setup(t: ExecutionContext, dataPath: DataPath, idleTimeoutMs = 30_000): Promise<Setup> {
  const closed: Array<[string, string | undefined]> = [];
  const host = new UdpSessionHost({
    spn: servicePortName('default', 'hosted', 'q'),
    idleTimeoutMs,
    maxSessions: 8,
    onClosed: (key, failed) => closed.push([key, failed]),
    onStray: () => {},
    dataPath,
  });
  t.teardown(() => host.close());
  const sockets: dgram.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.close()));
  const bind = async (reuseAddr: boolean): Promise<dgram.Socket> => {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr });
    sockets.push(s);
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    return s;
  };
  const listening = await bind(true);
  const client = await bind(false);
  const replies: string[] = [];
  // Replies must come from the listening socket's address: the client is connect()ed to it.
  await new Promise<void>((resolve) => client.connect(listening.address().port, '127.0.0.1', () => resolve()));
  client.on('message', (m: Buffer) => replies.push(m.toString()));
  const open = (endpoint: Endpoint, first: string): string => {
    const key = `0 127.0.0.1 ${client.address().port}`;
    host.open(
      { key, listenIndex: 0, local: { address: '127.0.0.1', port: listening.address().port, family: 'udp4' }, client: { address: '127.0.0.1', port: client.address().port }, endpoint },
      Buffer.from(first),
    );
    return key;
  };
  return { host, closed, listening, client, replies, open };
}

pathTest('a hosted session answers its client from the service address, and counts both ways exactly', async (t, dataPath) => {
  const be = await backendFor(t, udpEcho());
  const s = await setup(t, dataPath);
  s.open(makeEndpoint(be.host, be.port), 'first');
  await waitFor('the first reply', () => s.replies.length === 1);
  // Later datagrams go straight to the session's own socket (the agent process sees none of them).
  s.client.send('second!');
  await waitFor('the second reply', () => s.replies.length === 2);
  t.deepEqual(s.replies, ['first', 'second!']);
  t.is(s.host.stats.bytesIn, 12);
  t.is(s.host.stats.bytesOut, 12);
  t.is(s.host.sessionCount, 1);
  t.like(s.host.stats, { total: 1, active: 1 });
});

pathTest('an endpoint that answers with ICMP port unreachable ends the session and is named as failed', async (t, dataPath) => {
  const gone = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', () => resolve()));
  const dead = makeEndpoint('127.0.0.1', gone.address().port);
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  const s = await setup(t, dataPath);
  const key = s.open(dead, 'anyone?');
  await waitFor('the session to close', () => s.closed.length === 1);
  t.deepEqual(s.closed, [[key, dead.key]]);
  t.is(s.host.stats.dialFailures, 1);
  t.is(s.host.sessionCount, 0);
});

pathTest('an idle session is closed and reported; close() reports none twice', async (t, dataPath) => {
  const be = await backendFor(t, udpEcho());
  const s = await setup(t, dataPath, 300);
  const key = s.open(makeEndpoint(be.host, be.port), 'hi');
  await waitFor('the reply', () => s.replies.length === 1);
  await waitFor('the idle session to close', () => s.closed.length === 1);
  t.deepEqual(s.closed, [[key, undefined]]);
  s.host.close();
  s.host.close();
  t.is(s.closed.length, 1);
  t.like(s.host.stats, { total: 1, active: 0 });
});
