import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RoundRobinBalancer } from '../../../lib/balancer/round-robin-balancer.js';
import { InvalidConfigError } from '../../../lib/errors.js';
import { logger } from '../../../lib/log.js';
import { makeEndpoint } from '../../../lib/model/endpoint.js';
import type { Endpoint } from '../../../lib/model/endpoint.js';
import { servicePortName } from '../../../lib/model/service-port-name.js';
import { EndpointBackoff } from '../../../lib/proxy/endpoint-backoff.js';
import { pickEndpoint } from '../../../lib/proxy/pick-endpoint.js';
import { ProxyStats } from '../../../lib/proxy/proxy-stats.js';
import { Dialer } from '../../../lib/proxy/tcp/dialer.js';
import type { DialOutcome } from '../../../lib/proxy/tcp/dialer.js';
import { freePort, tcpEcho } from '../../helpers/backends.js';
import { stalledEndpoint } from '../../helpers/stalled-endpoint.js';

const spn = servicePortName('default', 'svc', 'p');
const log = logger('tcp');

function dialer(endpoints: readonly Endpoint[], timeoutsMs?: readonly number[]): { dialer: Dialer; stats: ProxyStats; backoff: EndpointBackoff; balancer: RoundRobinBalancer } {
  const balancer = new RoundRobinBalancer({ random: () => 0.999_999 });
  balancer.updateEndpoints(spn, endpoints);
  const backoff = new EndpointBackoff();
  const stats = new ProxyStats();
  return { dialer: new Dialer({ spn, balancer, backoff, stats, timeoutsMs, log }), stats, backoff, balancer };
}

function dial(d: Dialer, clientIP = '127.0.0.1'): Promise<DialOutcome> {
  return new Promise<DialOutcome>((resolve) => d.dial(clientIP, resolve));
}

function closeOutcome(t: ExecutionContext, outcome: DialOutcome): void {
  if (outcome.kind === 'connected') t.teardown(() => outcome.socket.destroy());
}

test('connects to the endpoint: a half-open capable socket with its connect timeout cleared', async (t) => {
  const be = await tcpEcho();
  t.teardown(() => be.close());
  const { dialer: d, stats, backoff } = dialer([makeEndpoint(be.host, be.port)]);
  const outcome = await dial(d);
  closeOutcome(t, outcome);
  t.is(outcome.kind, 'connected');
  if (outcome.kind !== 'connected') return;
  t.is(outcome.endpoint.port, be.port);
  t.is(outcome.attempts, 1);
  t.is(outcome.socket.remotePort, be.port);
  t.true(outcome.socket.allowHalfOpen);
  t.is(outcome.socket.timeout, 0, 'the connect timeout is cleared');
  t.is(stats.dialFailures, 0);
  t.is(backoff.size, 0);
});

test('no endpoint is its own outcome, reported asynchronously', async (t) => {
  const { dialer: d, stats } = dialer([]);
  let sync = true;
  const outcome = new Promise<DialOutcome>((resolve) =>
    d.dial('127.0.0.1', (o) => {
      t.false(sync, 'callback ran synchronously');
      resolve(o);
    }),
  );
  sync = false;
  t.deepEqual(await outcome, { kind: 'no-endpoint', attempts: 0 });
  t.is(stats.dialFailures, 0);
});

test('every attempt refused: one attempt per timeout, each failure counted and backed off', async (t) => {
  const a = makeEndpoint('127.0.0.1', await freePort());
  const b = makeEndpoint('127.0.0.1', await freePort());
  const { dialer: d, stats, backoff } = dialer([a, b], [100, 100, 100]);
  const outcome = await dial(d);
  t.is(outcome.kind, 'failed');
  if (outcome.kind !== 'failed') return;
  t.is(outcome.attempts, 3);
  t.is(outcome.reason, 'ECONNREFUSED');
  t.is(stats.dialFailures, 3);
  t.is(stats.dialRetries, 2);
  t.true(backoff.isBackedOff(a.key));
  t.true(backoff.isBackedOff(b.key));
});

test('a refused endpoint is skipped for the next attempt', async (t) => {
  const be = await tcpEcho();
  t.teardown(() => be.close());
  const dead = makeEndpoint('127.0.0.1', await freePort());
  const { dialer: d, stats } = dialer([dead, makeEndpoint(be.host, be.port)]);
  const outcome = await dial(d);
  closeOutcome(t, outcome);
  t.is(outcome.kind, 'connected');
  t.is(outcome.kind === 'connected' ? outcome.endpoint.port : 0, be.port);
  t.is(outcome.attempts, 2);
  t.is(stats.dialFailures, 1);
  t.is(stats.dialRetries, 1);
});

test('a timed-out attempt fails with ETIMEDOUT; a cancelled dial never calls back', async (t) => {
  const stalled = await stalledEndpoint();
  t.teardown(() => stalled.close());
  const { dialer: d, stats } = dialer([makeEndpoint(stalled.host, stalled.port)], [150]);
  let cancelledCalled = false;
  const pending = d.dial('127.0.0.1', () => (cancelledCalled = true));
  pending.cancel();
  pending.cancel();
  // A second dial with the same timeout, started after: when it has timed out, the cancelled one
  // would have too.
  const outcome = await dial(d);
  t.is(outcome.kind, 'failed');
  t.is(outcome.kind === 'failed' ? outcome.reason : '', 'ETIMEDOUT');
  t.false(cancelledCalled);
  t.is(stats.dialFailures, 1);
});

test('invalid timeouts are rejected up front', (t) => {
  const balancer = new RoundRobinBalancer();
  const base = { spn, balancer, backoff: new EndpointBackoff(), stats: new ProxyStats(), log };
  t.throws(() => new Dialer({ ...base, timeoutsMs: [] }), { instanceOf: InvalidConfigError });
  t.throws(() => new Dialer({ ...base, timeoutsMs: [250, 0] }), { instanceOf: InvalidConfigError });
  t.throws(() => new Dialer({ ...base, timeoutsMs: [Number.NaN] }), { instanceOf: InvalidConfigError });
});

test('pickEndpoint prefers endpoints that are not backed off, asking at most once per endpoint', (t) => {
  const eps = [makeEndpoint('10.0.0.1', 80), makeEndpoint('10.0.0.2', 80), makeEndpoint('10.0.0.3', 80)];
  const balancer = new RoundRobinBalancer({ random: () => 0.999_999 });
  balancer.updateEndpoints(spn, eps);
  const backoff = new EndpointBackoff();
  backoff.fail(eps[0]?.key ?? '');
  backoff.fail(eps[1]?.key ?? '');
  t.is(pickEndpoint(balancer, backoff, spn, '1.2.3.4', false)?.key, eps[2]?.key);
  t.is(pickEndpoint(balancer, backoff, spn, '1.2.3.4', false)?.key, eps[2]?.key);
  // All backed off: an endpoint is still returned (a back-off is a guess), not undefined.
  backoff.fail(eps[2]?.key ?? '');
  t.truthy(pickEndpoint(balancer, backoff, spn, '1.2.3.4', false));
  t.is(pickEndpoint(balancer, backoff, servicePortName('default', 'other', ''), '1.2.3.4', false), undefined);
});

test('per endpoint: a connect counts one total on the endpoint reached, a refusal one failure on the one refused', async (t) => {
  const be = await tcpEcho();
  t.teardown(() => be.close());
  const live = makeEndpoint(be.host, be.port);
  const dead = makeEndpoint('127.0.0.1', await freePort());
  const { dialer: d, stats } = dialer([dead, live]);
  const outcome = await dial(d);
  closeOutcome(t, outcome);
  t.is(outcome.kind, 'connected');
  if (outcome.kind !== 'connected') return;
  // The forwarder, not the dialer, counts the connection active: the dialer hands it the entry.
  t.true(outcome.endpointStats === stats.endpoints.get(live.key));
  t.deepEqual(Object.fromEntries(stats.endpoints), {
    [dead.key]: { active: 0, total: 0, dialFailures: 1 },
    [live.key]: { active: 0, total: 1, dialFailures: 0 },
  });
});
