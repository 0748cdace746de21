import test from 'ava';
import { loopbackBlock } from '../helpers/addresses.js';
import { apiService, apiSlice, startApiAgent } from '../helpers/api-agent.js';
import { httpPathEcho } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { formatDelay, watchEventLoopDelay } from '../helpers/event-loop-delay.js';
import { httpLoad } from '../helpers/http-load.js';
import { SeededRandom } from '../helpers/seeded-random.js';
import { waitFor } from '../helpers/wait-for.js';

// Endpoint churn under load: while a bounded loop of real HTTP requests runs through the proxy,
// the endpoints of the Service are added, removed and flipped ready/not ready through the API
// (the real client-node against the test API server). Backends that leave the rotation keep
// running, as a terminating pod does: so not one request may fail.

const ip = loopbackBlock(221);
const SEED = 1207;
const STEPS = 40;

test('endpoints added, removed and flipped ready under load: zero failed requests', async (t) => {
  // Every backend listens on the same port, as pods of one Deployment do.
  const first = await httpPathEcho(ip(101), 0, 'b1');
  t.teardown(() => first.close());
  const backends: Backend[] = [first];
  for (let i = 2; i <= 5; i++) {
    const b = await httpPathEcho(ip(100 + i), first.port, `b${i}`);
    t.teardown(() => b.close());
    backends.push(b);
  }
  const { api, agent } = await startApiAgent(t, (api) => {
    api.create('services', apiService('churn', ip(1), 8080));
    api.create('endpointslices', apiSlice('churn-a', 'churn', [{ backend: first }]));
  });
  const rotation = (): string => [...(agent.status().find((s) => s.spn === 'default/churn:p')?.endpoints ?? [])].sort().join();
  await waitFor('first endpoint in rotation', () => rotation() === `${first.host}:${first.port}`);

  const delay = watchEventLoopDelay();
  const load = httpLoad(`http://${ip(1)}:8080`, { parallel: 4, maxRequests: 50_000 });
  const random = new SeededRandom(SEED);
  for (let step = 0; step < STEPS; step++) {
    // Two slices; at least one ready endpoint in all, the others present but not ready or absent.
    const ready = random.subset(backends);
    const notReady = backends.filter((b) => !ready.includes(b) && random.next() < 0.5);
    const entries = [...ready.map((backend) => ({ backend })), ...notReady.map((backend) => ({ backend, ready: false }))];
    const split = random.int(entries.length + 1);
    const a = entries.slice(0, split);
    const b = entries.slice(split);
    if (a.length > 0) api.apply('endpointslices', apiSlice('churn-a', 'churn', a, first.port));
    else if (api.get('endpointslices', 'default', 'churn-a')) api.delete('endpointslices', 'default', 'churn-a');
    if (b.length > 0) api.apply('endpointslices', apiSlice('churn-b', 'churn', b, first.port));
    else if (api.get('endpointslices', 'default', 'churn-b')) api.delete('endpointslices', 'default', 'churn-b');
    const want = ready
      .map((r) => `${r.host}:${r.port}`)
      .sort()
      .join();
    await waitFor(`step ${step}: rotation ${want}`, () => rotation() === want, 10_000);
    // Let some requests go through each state.
    const at = load.requests;
    await waitFor(`step ${step}: requests under this rotation`, () => load.requests >= at + 20, 10_000);
  }
  const result = await load.stop();
  const d = delay.stop();

  t.is(result.failures, 0, result.errors.join('; '));
  t.true(result.requests >= STEPS * 20, `${result.requests} requests`);
  // The churn reached the data path: every backend answered at some point.
  t.deepEqual([...result.byBackend.keys()].sort(), backends.map((b) => b.name).sort());
  const stats = agent.status().find((s) => s.spn === 'default/churn:p')?.stats;
  t.is(stats?.dialGiveUps, 0);
  t.is(stats?.noEndpointRejections, 0);
  t.true(d.maxMs < 2000, formatDelay(d));
  t.log(`seed ${SEED}, ${STEPS} churn steps, ${result.requests} requests, ${result.failures} failed, ${formatDelay(d)}; by backend ${JSON.stringify(Object.fromEntries(result.byBackend))}`);
});
