import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { TcpRelayGroup, tcpNativeAvailable, tcpNativeUnavailableReason } from '../../../lib/internals/tcp-native.js';
import { logger } from '../../../lib/log.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import type { Endpoint } from '../../../lib/model/endpoint.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import { ProxyStats } from '../../../lib/proxy/proxy-stats.js';
import { Dialer } from '../../../lib/proxy/tcp/dialer.js';
import type { DialOutcome } from '../../../lib/proxy/tcp/dialer.js';
import { NativeDial, nativeConnector } from '../../../lib/proxy/tcp/native-connector.js';
import { freePort } from '../../helpers/backends.js';
import { stalledEndpoint } from '../../helpers/stalled-endpoint.js';
import { waitFor } from '../../helpers/wait-for.js';
import { newSockets, openSockets, socketLines } from '../../helpers/open-sockets.js';

// The upstream connect made by the native TCP addon, through the Dialer as the proxy uses it: real
// loopback listeners, a refused port, a port whose SYNs are dropped, and a process out of
// descriptors. With CI=true the addon must be built; elsewhere these are skipped when it is not.
const mustRun = tcpNativeAvailable() || process.env['CI'] === 'true';
if (!mustRun) console.warn(`skipping the native connect specs: ${tcpNativeUnavailableReason()} (with CI=true they run, and fail)`);
// Socket counts are the process's: every test here runs alone.
const nativeSerialTest = mustRun ? test.serial : test.skip;

const spn = servicePortName('default', 'native-dial', 'p');

interface Setup {
  readonly dialer: Dialer<NativeDial>;
  readonly relays: TcpRelayGroup<object>;
  readonly stats: ProxyStats;
  readonly backoff: EndpointBackoff;
}

function setup(endpoints: readonly Endpoint[], timeoutsMs?: readonly number[]): Setup {
  const relays = TcpRelayGroup.create<object>(() => {});
  if (relays === undefined) throw new Error(`no native TCP data path: ${tcpNativeUnavailableReason()}`);
  const balancer = new RoundRobinBalancer({ random: () => 0.999_999 });
  balancer.updateEndpoints(spn, endpoints);
  const backoff = new EndpointBackoff();
  const stats = new ProxyStats();
  const dialer = new Dialer<NativeDial>({ spn, balancer, backoff, stats, timeoutsMs, log: logger('tcp'), connector: nativeConnector(relays) });
  return { dialer, relays, stats, backoff };
}

function dial(d: Dialer<NativeDial>): Promise<DialOutcome<NativeDial>> {
  return new Promise((resolve) => d.dial('127.0.0.1', resolve));
}

/** A listener whose accepted sockets are kept (and destroyed in teardown); accepted counts them. */
async function listener(t: ExecutionContext, host = '127.0.0.1'): Promise<{ port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    accepted.push(s);
  });
  await new Promise<void>((resolve) => srv.listen({ host, port: 0 }, () => resolve()));
  t.teardown(() => {
    for (const s of accepted) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, accepted };
}

nativeSerialTest('a connect succeeds as one socket of the addon, which closes it when told to', async (t) => {
  const { port, accepted } = await listener(t);
  const { dialer, relays, stats, backoff } = setup([makeEndpoint('127.0.0.1', port)]);
  const before = openSockets();
  const outcome = await dial(dialer);
  t.is(outcome.kind, 'connected');
  if (outcome.kind !== 'connected') return;
  t.true(outcome.socket instanceof NativeDial);
  t.is(outcome.attempts, 1);
  t.is(relays.size, 1);
  await waitFor('the listener to accept', () => accepted.length === 1);
  // Both ends are in this process: the addon's upstream and the listener's accepted socket.
  t.is(socketLines(newSockets(before)).length, 2);
  const peer = accepted[0] as net.Socket;
  const ended = new Promise<void>((resolve) => peer.once('end', resolve).resume());
  outcome.socket.close();
  // A FIN, not a RST: the connection was never relayed.
  await ended;
  t.is(relays.size, 0);
  peer.destroy();
  await waitFor('the accepted socket to close', () => socketLines(newSockets(before)).length === 0);
  t.is(stats.dialFailures, 0);
  t.is(backoff.size, 0);
});

nativeSerialTest('IPv6 endpoints connect too, with or without an interface named', async (t) => {
  const { port, accepted } = await listener(t, '::1');
  for (const ip of ['::1', '::1%lo']) {
    const { dialer, relays } = setup([makeEndpoint(ip, port)]);
    const outcome = await dial(dialer);
    t.is(outcome.kind, 'connected', ip);
    if (outcome.kind === 'connected') outcome.socket.close();
    t.is(relays.size, 0);
  }
  await waitFor('the listener to accept both', () => accepted.length === 2);
});

nativeSerialTest('a refused port: ECONNREFUSED reaches the Dialer, the endpoint is backed off and the next one is tried', async (t) => {
  const { port } = await listener(t);
  const dead = makeEndpoint('127.0.0.1', await freePort());
  const live = makeEndpoint('127.0.0.1', port);
  const { dialer, relays, stats, backoff } = setup([dead, live]);
  const outcome = await dial(dialer);
  t.is(outcome.kind, 'connected');
  if (outcome.kind !== 'connected') return;
  t.is(outcome.endpoint.key, live.key);
  t.is(outcome.attempts, 2);
  t.is(stats.dialFailures, 1);
  t.is(stats.endpoint(dead.key).dialFailures, 1);
  t.true(backoff.isBackedOff(dead.key));
  outcome.socket.close();
  t.is(relays.size, 0);

  // Only the dead one: every attempt fails with the kernel's reason.
  const alone = setup([dead], [100, 100]);
  const failed = await dial(alone.dialer);
  t.deepEqual(failed, { kind: 'failed', attempts: 2, endpoint: dead, reason: 'ECONNREFUSED' });
  t.is(alone.relays.size, 0);
});

nativeSerialTest('a connect that hangs is cancelled by its timeout: ETIMEDOUT, and no descriptor is left', async (t) => {
  const stalled = await stalledEndpoint();
  t.teardown(() => stalled.close());
  const { dialer, relays, stats } = setup([makeEndpoint(stalled.host, stalled.port)], [150]);
  const before = openSockets();
  const outcome = await dial(dialer);
  t.is(outcome.kind, 'failed');
  t.is(outcome.kind === 'failed' ? outcome.reason : '', 'ETIMEDOUT');
  t.is(stats.dialFailures, 1);
  t.is(relays.size, 0);
  t.deepEqual(socketLines(newSockets(before)), []);

  // Cancelled by its caller (the client went away): never called back, nothing left either.
  let called = false;
  const pending = dialer.dial('127.0.0.1', () => (called = true));
  t.is(relays.size, 1);
  pending.cancel();
  t.is(relays.size, 0);
  t.deepEqual(socketLines(newSockets(before)), []);
  t.false(called);
});

nativeSerialTest('out of descriptors: a local error, neither blamed on the endpoint nor retried', async (t) => {
  // A process of its own with a low descriptor limit, filled up with /dev/null before dialing.
  const url = (m: string): string => JSON.stringify(new URL(`../../../lib/${m}.js`, import.meta.url).href);
  const script = [
    `import { openSync, closeSync } from 'node:fs';`,
    `const { TcpRelayGroup } = await import(${url('internals/tcp-native')});`,
    `const { nativeConnector } = await import(${url('proxy/tcp/native-connector')});`,
    `const { Dialer } = await import(${url('proxy/tcp/dialer')});`,
    `const { RoundRobinBalancer } = await import(${url('balancer/round-robin-balancer')});`,
    `const { EndpointBackoff } = await import(${url('proxy/endpoint-backoff')});`,
    `const { ProxyStats } = await import(${url('proxy/proxy-stats')});`,
    `const { logger } = await import(${url('log')});`,
    `const { makeEndpoint } = await import(${url('model/endpoint')});`,
    `const spn = 'default/emfile:p';`,
    `const balancer = new RoundRobinBalancer();`,
    `const ep = makeEndpoint('127.0.0.1', ${await freePort()});`,
    `balancer.updateEndpoints(spn, [ep]);`,
    `const backoff = new EndpointBackoff(); const stats = new ProxyStats();`,
    `const dialer = new Dialer({ spn, balancer, backoff, stats, log: logger('tcp'), connector: nativeConnector(TcpRelayGroup.create(() => {})) });`,
    `const held = [];`,
    `try { for (let i = 0; i < 4096; i++) held.push(openSync('/dev/null', 'r')); } catch (err) { if (err.code !== 'EMFILE') throw err; }`,
    `const outcome = await new Promise((resolve) => dialer.dial('127.0.0.1', resolve));`,
    `for (const fd of held) closeSync(fd);`,
    `console.log(JSON.stringify({ kind: outcome.kind, reason: outcome.reason, attempts: outcome.attempts, local: stats.localResourceErrors, failures: stats.dialFailures, endpointFailures: stats.endpoint(ep.key).dialFailures, backedOff: backoff.isBackedOff(ep.key) }));`,
  ].join('\n');
  const { stdout } = await promisify(execFile)('prlimit', ['--nofile=256:256', process.execPath, '--input-type=module', '-e', script], { timeout: 20_000 });
  t.deepEqual(JSON.parse(stdout) as unknown, { kind: 'local-error', reason: 'EMFILE', attempts: 1, local: 1, failures: 0, endpointFailures: 0, backedOff: false });
});
