import net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { tcpEcho, tcpName, tcpRefused, tcpRequest } from '../helpers/backends.js';
import type { Backend } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

// The whole path with the Kubernetes API source: the real client-node informers against the test
// API server, the agent, and real sockets. Backends are on loopback, which the source refuses in
// production; allowLoopbackEndpoints opens that one door for tests that may target only loopback.

function service(name: string, ip: string, port: number, extra: Record<string, unknown> = {}): KubeObject {
  return {
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'p', port, protocol: 'TCP', targetPort: port }], sessionAffinity: 'None', ...extra },
    status: { loadBalancer: {} },
  };
}

function slice(name: string, svc: string, backend: Backend, nodeName: string): KubeObject {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [backend.host], conditions: { ready: true }, nodeName }],
    ports: [{ name: 'p', port: backend.port, protocol: 'TCP' }],
  };
}

async function backend<T extends Backend>(t: ExecutionContext, b: Promise<T>): Promise<T> {
  const started = await b;
  t.teardown(() => started.close());
  return started;
}

async function start(t: ExecutionContext, seed: (api: TestApiServer) => void): Promise<{ api: TestApiServer; agent: Agent }> {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  seed(api);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const source = new KubeSource({ kubeConfig, backoff: { initialMs: 50, maxMs: 400 }, allowLoopbackEndpoints: true });
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 500, minSyncPeriodMs: 0, nodeName: 'node-a' },
    source,
  });
  t.teardown(() => agent.destroy());
  await agent.start();
  return { api, agent };
}

async function names(host: string, port: number, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add((await tcpRequest(host, port)).toString());
  return seen;
}

test('services and slices added, updated and deleted in the API reach the data path', async (t) => {
  const ip = loopbackBlock(81);
  const a = await backend(t, tcpName('a', ip(101)));
  const b = await backend(t, tcpName('b', ip(102)));
  const { api } = await start(t, (api) => {
    api.create('services', service('web', ip(1), 7000));
    api.create('endpointslices', slice('web-a', 'web', a, 'node-a'));
    api.create('endpointslices', slice('web-b', 'web', b, 'node-b'));
  });
  t.deepEqual([...(await names(ip(1), 7000, 4))].sort(), ['a', 'b']);

  api.delete('endpointslices', 'default', 'web-b');
  await waitFor('only a left', async () => [...(await names(ip(1), 7000, 3))].join() === 'a');

  api.update('services', service('web', ip(1), 7001));
  await waitFor('moved to the new port', async () => (await tcpRequest(ip(1), 7001).catch(() => Buffer.alloc(0))).toString() === 'a');
  t.true(await tcpRefused(ip(1), 7000));

  api.delete('services', 'default', 'web');
  await waitFor('service gone', () => tcpRefused(ip(1), 7001));
});

test("internalTrafficPolicy Local from the API uses only this node's endpoints", async (t) => {
  const ip = loopbackBlock(82);
  const a = await backend(t, tcpName('a', ip(101)));
  const b = await backend(t, tcpName('b', ip(102)));
  await start(t, (api) => {
    api.create('services', service('local', ip(1), 7000, { internalTrafficPolicy: 'Local' }));
    api.create('endpointslices', slice('local-a', 'local', a, 'node-a'));
    api.create('endpointslices', slice('local-b', 'local', b, 'node-b'));
  });
  t.deepEqual([...(await names(ip(1), 7000, 4))], ['a']);
});

test('through a dropped watch, a 410, HTTP 500s and an API server restart the agent converges and an established connection lives on', async (t) => {
  const ip = loopbackBlock(83);
  const echo = await backend(t, tcpEcho(ip(101)));
  const late = await backend(t, tcpName('late', ip(102)));
  const { api, agent } = await start(t, (api) => {
    api.create('services', service('echo', ip(1), 7000));
    api.create('endpointslices', slice('echo-0', 'echo', echo, 'node-a'));
  });
  const conn = net.connect({ host: ip(1), port: 7000 });
  t.teardown(() => void conn.destroy());
  let got = '';
  conn.on('data', (d: Buffer) => (got += d.toString()));
  let sent = '';
  const ping = async (word: string): Promise<void> => {
    sent += word;
    conn.write(word);
    await waitFor(`echo of ${word}`, () => got === sent);
  };
  await ping('start;');

  const step = async (what: string, fault: () => Promise<void> | void, n: number): Promise<void> => {
    await fault();
    // A change made after the fault must reach the data path: the agent has recovered.
    api.apply('services', service(`late-${n}`, ip(10 + n), 7100));
    api.apply('endpointslices', slice(`late-${n}`, `late-${n}`, late, 'node-a'));
    await waitFor(`converged after ${what}`, async () => (await tcpRequest(ip(10 + n), 7100).catch(() => Buffer.alloc(0))).toString() === 'late', 15_000);
    await ping(`${what};`);
  };

  await step('dropped watch', () => void api.dropWatches({ abrupt: true }), 1);
  await step('410 Expired', () => api.expire(), 2);
  await step(
    'HTTP 500s',
    async () => {
      const failing = api.fail({ status: 500 });
      api.dropWatches();
      await waitFor('failures seen', () => failing.hits >= 3, 10_000);
      await waitFor('unhealthy source reported', () => agent.sourceHealth()?.connected === false);
      failing.clear();
    },
    3,
  );
  await step('API server restart', () => api.restart(), 4);

  t.false(conn.destroyed);
  t.true((agent.sourceHealth()?.informerRestarts ?? 0) > 0);
  t.is(agent.status().find((s) => s.spn === 'default/echo:p')?.stats?.active, 1);
});
