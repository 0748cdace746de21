/**
 * The health check node port through a real Agent fed by manifests, over real HTTP on loopback.
 * The agent is `node-a`; endpoints on `node-b` are another node's.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { KubeConfig } from '@kubernetes/client-node';
import net from 'node:net';
import test from 'ava';
import { Agent, SYNC_CHANNEL } from '../../lib/agent/agent.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { freePort, tcpRefused } from '../helpers/backends.js';
import { sliceYaml } from '../helpers/agent-fixture.js';
import type { SliceEndpoint } from '../helpers/agent-fixture.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';
import { FailingRules, get, startProxy } from '../server/fixture.js';
import { captureLogLines } from '../helpers/log-capture.js';

const ip = loopbackBlock(161);
const NODE = 'node-a';
/** Only 127.0.0.1 is a loopback address the kernel lists, so the checks listen there alone. */
const LOOPBACK_ONLY = { nodeName: NODE, nodePortAddresses: ['127.0.0.0/8'] };

const logCapture = captureLogLines();
const logLines = logCapture.lines;
test.after.always(() => logCapture.close());

interface Shape {
  readonly clusterIP: string;
  readonly healthCheckNodePort?: number;
  readonly externalTrafficPolicy?: 'Local' | 'Cluster';
  readonly type?: string;
}

function serviceYaml(namespace: string, shape: Shape): string {
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    '  name: web',
    `  namespace: ${namespace}`,
    'spec:',
    `  type: ${shape.type ?? 'LoadBalancer'}`,
    `  clusterIP: "${shape.clusterIP}"`,
    `  externalTrafficPolicy: ${shape.externalTrafficPolicy ?? 'Local'}`,
    ...(shape.healthCheckNodePort ? [`  healthCheckNodePort: ${shape.healthCheckNodePort}`] : []),
    '  ports:',
    '    - name: http',
    '      port: 8080',
    '',
  ].join('\n');
}

function slices(namespace: string, endpoints: SliceEndpoint[]): string {
  return sliceYaml('web', 'web-1', [{ name: 'http', port: 8080 }], endpoints, namespace);
}

interface CheckAnswer {
  readonly status: number;
  readonly body: { service: { namespace: string; name: string }; localEndpoints: number; serviceProxyHealthy: boolean };
}

async function check(port: number, host = '127.0.0.1'): Promise<CheckAnswer> {
  const r = await get(`http://${host.includes(':') ? `[${host}]` : host}:${port}/`);
  return { status: r.status, body: JSON.parse(r.body) as CheckAnswer['body'] };
}

/** Polls until the check answers `status` with `localEndpoints`; returns that answer. */
function answers(port: number, status: number, localEndpoints: number): Promise<CheckAnswer> {
  return waitFor(`health check on ${port}: ${status} with ${localEndpoints} local endpoints`, async () => {
    const a = await check(port);
    return a.status === status && a.body.localEndpoints === localEndpoints ? a : undefined;
  });
}

/** Resolves after `n` more syncs of `agent` have finished. */
function syncs(agent: Agent, n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if ((m as { agent?: unknown }).agent !== agent || ++seen < n) return;
      diagnosticsChannel.unsubscribe(SYNC_CHANNEL.name, on);
      resolve();
    };
    diagnosticsChannel.subscribe(SYNC_CHANNEL.name, on);
  });
}

test('200 with local ready endpoints, 503 without, following EndpointSlice changes; the body names the service', async (t) => {
  const port = await freePort();
  const { write } = await startProxy(
    t,
    { 'svc.yaml': serviceYaml('shop', { clusterIP: ip(1), healthCheckNodePort: port }), 'eps.yaml': slices('shop', [{ ip: '10.1.0.2', nodeName: 'node-b' }]) },
    { config: LOOPBACK_ONLY },
  );
  const remote = await answers(port, 503, 0);
  t.deepEqual(remote.body, { service: { namespace: 'shop', name: 'web' }, localEndpoints: 0, serviceProxyHealthy: true });

  await write(
    'eps.yaml',
    slices('shop', [
      { ip: '10.1.0.2', nodeName: 'node-b' },
      { ip: '10.1.0.3', nodeName: NODE },
    ]),
  );
  const one = await answers(port, 200, 1);
  t.deepEqual(one.body, { service: { namespace: 'shop', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: true });

  await write(
    'eps.yaml',
    slices('shop', [
      { ip: '10.1.0.3', nodeName: NODE },
      { ip: '10.1.0.4', nodeName: NODE },
      { ip: '10.1.0.5', nodeName: NODE, ready: false, serving: true, terminating: true },
    ]),
  );
  await answers(port, 200, 2);

  // Only terminating pods left here: the node must fail the check although they still serve.
  await write('eps.yaml', slices('shop', [{ ip: '10.1.0.5', nodeName: NODE, ready: false, serving: true, terminating: true }]));
  const none = await answers(port, 503, 0);
  t.is(none.status, 503);
});

test('the listener opens, moves and closes as the service comes, changes port, policy and goes', async (t) => {
  const [port1, port2] = [await freePort(), await freePort()];
  const eps = slices('moves', [{ ip: '10.2.0.3', nodeName: NODE }]);
  const f = await startProxy(t, { 'svc.yaml': serviceYaml('moves', { clusterIP: ip(2), healthCheckNodePort: port1 }), 'eps.yaml': eps }, { config: LOOPBACK_ONLY });
  await answers(port1, 200, 1);

  await f.write('svc.yaml', serviceYaml('moves', { clusterIP: ip(2), healthCheckNodePort: port2 }));
  await answers(port2, 200, 1);
  t.true(await tcpRefused('127.0.0.1', port1), 'the old port is closed');

  await f.write('svc.yaml', serviceYaml('moves', { clusterIP: ip(2), externalTrafficPolicy: 'Cluster' }));
  await waitFor('the check closed with policy Cluster', () => tcpRefused('127.0.0.1', port2));

  await f.write('svc.yaml', serviceYaml('moves', { clusterIP: ip(2), healthCheckNodePort: port2 }));
  await answers(port2, 200, 1);
  await f.write('svc.yaml', serviceYaml('moves', { type: 'ClusterIP', clusterIP: ip(2) }).replace('  externalTrafficPolicy: Local\n', ''));
  await waitFor('the check closed as a ClusterIP service', () => tcpRefused('127.0.0.1', port2));
  t.deepEqual(
    f.agent.status().map((s) => s.spn),
    ['moves/web:http'],
    'the service itself is still proxied',
  );
});

test('a port another process holds: one error line, the service still proxied, and the check opens once the port is free', async (t) => {
  const port = await freePort();
  const squatter = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => squatter.listen({ host: '127.0.0.1', port }, resolve));
  t.teardown(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
  const f = await startProxy(
    t,
    { 'svc.yaml': serviceYaml('taken', { clusterIP: ip(3), healthCheckNodePort: port }), 'eps.yaml': slices('taken', [{ ip: '10.3.0.3', nodeName: NODE }]) },
    { config: LOOPBACK_ONLY },
  );
  t.deepEqual(
    f.agent.status().map((s) => [s.spn, s.error]),
    [['taken/web:http', undefined]],
  );
  t.true(f.agent.health().healthy, 'a health check that cannot open does not make the proxy unhealthy');
  const errorLines = (): string[] => logLines.filter((l) => l.includes('cannot open health check') && l.includes('taken/web'));
  // winston writes through streams: a line lands a little after it is logged.
  await waitFor('the error logged', () => errorLines().length > 0);
  await syncs(f.agent, 3);
  const errors = errorLines();
  t.is(errors.length, 1, `one line however many syncs retried: ${errors.join('')}`);
  t.regex(errors[0] ?? '', new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));

  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  await answers(port, 200, 1);
});

test("serviceProxyHealthy is the agent's health: 503 while the rules fail to apply and while draining, with the local endpoints still counted", async (t) => {
  const port = await freePort();
  const rules = new FailingRules();
  const f = await startProxy(
    t,
    { 'svc.yaml': serviceYaml('sick', { clusterIP: ip(4), healthCheckNodePort: port }), 'eps.yaml': slices('sick', [{ ip: '10.4.0.3', nodeName: NODE }]) },
    { config: LOOPBACK_ONLY, rules },
  );
  const failing = await answers(port, 503, 1);
  t.false(failing.body.serviceProxyHealthy);

  rules.failing = false;
  const ok = await waitFor('healthy again', async () => {
    const a = await check(port);
    return a.status === 200 ? a : undefined;
  });
  t.true(ok.body.serviceProxyHealthy);

  // Shutting down: load balancers must move away while connections finish.
  await f.agent.drain(0);
  const draining = await check(port);
  t.is(draining.status, 503);
  t.deepEqual(draining.body, { service: { namespace: 'sick', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: false });
  await f.agent.close();
  t.true(await tcpRefused('127.0.0.1', port), 'closed with the agent');
});

test('without --nodeport-addresses the check listens on every address', async (t) => {
  const port = await freePort();
  await startProxy(
    t,
    { 'svc.yaml': serviceYaml('everywhere', { clusterIP: ip(5), healthCheckNodePort: port }), 'eps.yaml': slices('everywhere', [{ ip: '10.5.0.3', nodeName: NODE }]) },
    { config: { nodeName: NODE } },
  );
  await answers(port, 200, 1);
  // Any local address reaches it: here another loopback address no socket names.
  t.is((await check(port, ip(200))).status, 200);
});

test('from the Kubernetes API: the allocated healthCheckNodePort is served, and slice updates move it between 200 and 503', async (t) => {
  const port = await freePort();
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const apiSlice = (nodeName: string): KubeObject => ({
    metadata: { namespace: 'api', name: 'web-x1', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['10.6.0.3'], conditions: { ready: true, serving: true, terminating: false }, nodeName }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  api.create('services', {
    metadata: { namespace: 'api', name: 'web' },
    spec: {
      type: 'LoadBalancer',
      clusterIP: ip(6),
      clusterIPs: [ip(6)],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 8080 }],
      sessionAffinity: 'None',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: port,
    },
    status: { loadBalancer: {} },
  });
  api.create('endpointslices', apiSlice(NODE));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 500, minSyncPeriodMs: 0, ...LOOPBACK_ONLY },
    source: new KubeSource({ kubeConfig, backoff: { initialMs: 50, maxMs: 400 } }),
  });
  t.teardown(() => agent.destroy());
  await agent.start();

  const local = await answers(port, 200, 1);
  t.deepEqual(local.body.service, { namespace: 'api', name: 'web' });
  api.update('endpointslices', apiSlice('node-b'));
  await answers(port, 503, 0);
  api.update('endpointslices', apiSlice(NODE));
  await answers(port, 200, 1);
  api.delete('services', 'api', 'web');
  await waitFor('the check closed with the service', () => tcpRefused('127.0.0.1', port));
});

test('counts follow EndpointSlices at once, without waiting for a sync', async (t) => {
  const port = await freePort();
  // Two runs back to back, then none for a minute: only the start-up syncs happen in this test.
  const f = await startProxy(
    t,
    { 'svc.yaml': serviceYaml('quick', { clusterIP: ip(7), healthCheckNodePort: port }), 'eps.yaml': slices('quick', [{ ip: '10.7.0.2', nodeName: 'node-b' }]) },
    { config: { ...LOOPBACK_ONLY, minSyncPeriodMs: 60_000, syncPeriodMs: 120_000 } },
  );
  await answers(port, 503, 0);
  let runs = 0;
  const count = (m: unknown): void => {
    if ((m as { agent?: unknown }).agent === f.agent) runs++;
  };
  diagnosticsChannel.subscribe(SYNC_CHANNEL.name, count);
  t.teardown(() => diagnosticsChannel.unsubscribe(SYNC_CHANNEL.name, count));
  await f.write('eps.yaml', slices('quick', [{ ip: '10.7.0.3', nodeName: NODE }]));
  await answers(port, 200, 1);
  await f.write('eps.yaml', slices('quick', [{ ip: '10.7.0.3', nodeName: 'node-b' }]));
  await answers(port, 503, 0);
  t.is(runs, 0, 'no sync ran in between');
});
