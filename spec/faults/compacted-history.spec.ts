import net from 'node:net';
import test from 'ava';
import { request } from 'undici';
import { loopbackBlock } from '../helpers/addresses.js';
import { apiService, apiSlice, startApiAgent } from '../helpers/api-agent.js';
import { httpPathEcho, tcpEcho, tcpRefused } from '../helpers/backends.js';
import { formatDelay, watchEventLoopDelay } from '../helpers/event-loop-delay.js';
import { httpLoad } from '../helpers/http-load.js';
import { waitFor } from '../helpers/wait-for.js';

// The API server goes away; while it is down objects are created, changed and deleted and the
// history is compacted, so that on its return every watch from the old resourceVersion gets 410
// Gone (as an ERROR event) and the informers must relist. The state must converge to the new lists, and a Service that
// did not change must not be deleted and re-added on the way: its listener and an established
// connection stay, and a load loop through it has no failed request.

const ip = loopbackBlock(223);

async function answers(host: string, port: number): Promise<string> {
  // A fresh connection each time: a kept-alive one would stay with the endpoint it was opened to.
  const res = await request(`http://${host}:${port}/x`, { reset: true, headersTimeout: 2000, bodyTimeout: 2000 });
  return `${String(res.headers['x-backend'])}:${await res.body.text()}`;
}

test('an outage, compacted history and 410 on return: the new state converges and nothing unchanged is deleted', async (t) => {
  const steady = await httpPathEcho(ip(101), 0, 'steady');
  t.teardown(() => steady.close());
  const echo = await tcpEcho(ip(102));
  t.teardown(() => echo.close());
  const before = await httpPathEcho(ip(103), 0, 'before');
  t.teardown(() => before.close());
  const after = await httpPathEcho(ip(104), 0, 'after');
  t.teardown(() => after.close());
  const { api, agent } = await startApiAgent(t, (api) => {
    api.create('services', apiService('steady', ip(1), 8080));
    api.create('endpointslices', apiSlice('steady-0', 'steady', [{ backend: steady }]));
    api.create('services', apiService('echo', ip(2), 7000));
    api.create('endpointslices', apiSlice('echo-0', 'echo', [{ backend: echo }]));
    api.create('services', apiService('moved', ip(3), 8080));
    api.create('endpointslices', apiSlice('moved-0', 'moved', [{ backend: before }]));
    api.create('services', apiService('gone', ip(4), 8080));
    api.create('endpointslices', apiSlice('gone-0', 'gone', [{ backend: before }]));
  });
  await waitFor('all four serving', async () => (await answers(ip(4), 8080)) === 'before:x', 10_000);
  const conn = net.connect({ host: ip(2), port: 7000 });
  t.teardown(() => void conn.destroy());
  let got = '';
  conn.on('data', (d: Buffer) => (got += d.toString()));
  conn.write('one;');
  await waitFor('echo before the outage', () => got === 'one;');

  const delay = watchEventLoopDelay();
  const load = httpLoad(`http://${ip(1)}:8080`, { parallel: 2, maxRequests: 20_000 });
  // An outage: changes made while the server is down arrive once it is back.
  await api.stop();
  await waitFor('the source reports the outage', () => agent.sourceHealth()?.connected === false, 15_000);
  api.update('endpointslices', apiSlice('moved-0', 'moved', [{ backend: after }]));
  const outageRequests = load.requests;
  await waitFor('requests served during the outage', () => load.requests >= outageRequests + 50, 10_000);
  await api.restart();
  await waitFor('converged after the outage', async () => (await answers(ip(3), 8080).catch(() => '')) === 'after:x', 20_000);

  // The watches fall behind (they stay open, silent), changes pile up, the history is compacted
  // past them: every watch gets ERROR 410 Expired and the informers relist.
  api.pauseWatches();
  api.delete('services', 'default', 'gone');
  api.delete('endpointslices', 'default', 'gone-0');
  api.create('services', apiService('new', ip(5), 8080));
  api.create('endpointslices', apiSlice('new-0', 'new', [{ backend: after }]));
  const pausedRequests = load.requests;
  await waitFor('requests served behind the paused watches', () => load.requests >= pausedRequests + 50, 10_000);
  t.true(await tcpRefused(ip(5), 8080), 'the paused watches hid the new service');
  t.is(await answers(ip(4), 8080), 'before:x', 'and the deletion');
  api.expire();
  await waitFor('converged after 410: new serves, gone is gone', async () => (await answers(ip(5), 8080).catch(() => '')) === 'after:x' && (await tcpRefused(ip(4), 8080)), 20_000);
  const result = await load.stop();
  const d = delay.stop();

  t.is(result.failures, 0, result.errors.join('; '));
  t.true(result.requests >= 100, `${result.requests} requests`);
  // Not deleted and re-added: the established connection is the same, and still echoes.
  conn.write('two;');
  await waitFor('echo after the return', () => got === 'one;two;');
  t.false(conn.destroyed);
  const echoStats = agent.status().find((s) => s.spn === 'default/echo:p')?.stats;
  t.is(echoStats?.total, 1, 'the echo listener is the one from before the outage');
  t.is(agent.status().find((s) => s.spn === 'default/steady:p')?.stats?.noEndpointRejections, 0);
  t.deepEqual(
    agent
      .status()
      .map((s) => s.spn)
      .sort(),
    ['default/echo:p', 'default/moved:p', 'default/new:p', 'default/steady:p'],
  );
  t.log(`${result.requests} requests through the outage and the relist, ${result.failures} failed, ${formatDelay(d)}`);
});
