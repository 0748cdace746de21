import diagnosticsChannel from 'node:diagnostics_channel';
import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { SYNC_CHANNEL_NAME } from '../../lib/server/metrics.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { apiService, apiSlice } from '../helpers/api-agent.js';
import { backendFor, tcpEcho, tcpRequest } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

const ip = loopbackBlock(75);
/** kube-proxy's default minSyncPeriod, as the CLI has it. */
const MIN_SYNC_PERIOD_MS = 1000;

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

test('after a quiet period, a new Service and its EndpointSlice from the API cost at most two syncs, and neither waits for the min-sync-period', async (t) => {
  const echo = await backendFor(t, tcpEcho(ip(10)));
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  api.create('services', apiService('old', ip(1), 7500));
  api.create('endpointslices', apiSlice('old-1', 'old', [{ backend: echo }]));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const source = new KubeSource({ kubeConfig, allowLoopbackEndpoints: true });
  // No periodic sync in the way: every sync counted is one the changes asked for.
  const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 3_600_000, minSyncPeriodMs: MIN_SYNC_PERIOD_MS }, source });
  t.teardown(() => agent.destroy());
  await agent.start();
  await agent.settled();
  // The quiet period is what is tested: the start-up sync's token is back after one interval.
  await new Promise((r) => setTimeout(r, MIN_SYNC_PERIOD_MS + 100));

  let syncs = 0;
  const onSync = (m: unknown): void => {
    if ((m as { agent?: unknown }).agent === agent) syncs++;
  };
  diagnosticsChannel.subscribe(SYNC_CHANNEL_NAME, onSync);
  t.teardown(() => diagnosticsChannel.unsubscribe(SYNC_CHANNEL_NAME, onSync));

  const created = performance.now();
  api.create('services', apiService('new', ip(2), 7500));
  api.create('endpointslices', apiSlice('new-1', 'new', [{ backend: echo }]));
  await waitFor('the new port to listen', () => listening(ip(2), 7500), 10_000);
  const ms = performance.now() - created;
  await agent.settled();
  t.true(syncs >= 1 && syncs <= 2, `${syncs} syncs`);
  t.true(ms < MIN_SYNC_PERIOD_MS, `listening after ${ms.toFixed(0)} ms: no sync waited for its slot`);
  t.is((await tcpRequest(ip(2), 7500, 'hello')).toString(), 'hello');
});
