import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { serviceScopeOf } from '../../lib/agent/service-scope-of.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import { ScopedServiceSource } from '../../lib/source/scoped-service-source.js';
import type { ServiceSource } from '../../lib/source/service-source.js';
import { loopbackBlock } from '../helpers/addresses.js';
import { tcpName, tcpRefused, tcpRequest } from '../helpers/backends.js';
import { TestApiServer } from '../helpers/test-api-server.js';
import type { KubeObject } from '../helpers/test-api-server.js';
import { waitFor } from '../helpers/wait-for.js';

// --namespace and --selector through the real agent, from manifests and from the API.

const ip = loopbackBlock(214);

function serviceYaml(namespace: string, name: string, clusterIP: string, labels: Record<string, string>): string {
  const labelLines = Object.entries(labels).map(([k, v]) => `    ${k}: "${v}"`);
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    `  namespace: ${namespace}`,
    ...(labelLines.length > 0 ? ['  labels:', ...labelLines] : []),
    'spec:',
    `  clusterIP: "${clusterIP}"`,
    '  ports:',
    '    - name: p',
    '      port: 7000',
    '      targetPort: 7000',
    '',
  ].join('\n');
}

function agentOn(t: ExecutionContext, source: ServiceSource): Agent {
  const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 200, minSyncPeriodMs: 0 }, source });
  t.teardown(() => agent.destroy());
  return agent;
}

function served(agent: Agent): string[] {
  return agent
    .status()
    .map((p) => p.spn)
    .sort();
}

test('manifests: only the namespaces and labels asked for; a Service whose labels change leaves and comes back', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-scope-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const write = async (name: string, text: string): Promise<void> => {
    await writeFile(path.join(dir, `.${name}`), text);
    await rename(path.join(dir, `.${name}`), path.join(dir, name));
  };
  const a = await tcpName('orders');
  t.teardown(() => a.close());
  await write('orders.yaml', serviceYaml('shop', 'orders', ip(1), { app: 'orders', tier: 'web' }));
  await write(
    'orders-slice.yaml',
    [
      'apiVersion: discovery.k8s.io/v1',
      'kind: EndpointSlice',
      'metadata: {name: orders-1, namespace: shop, labels: {kubernetes.io/service-name: orders}}',
      'addressType: IPv4',
      `ports: [{name: p, port: ${a.port}, protocol: TCP}]`,
      `endpoints: [{addresses: ["${a.host}"]}]`,
      '',
    ].join('\n'),
  );
  await write('db.yaml', serviceYaml('shop', 'db', ip(2), { app: 'db', tier: 'data' }));
  await write('legacy.yaml', serviceYaml('shop', 'legacy', ip(3), { app: 'legacy', legacy: 'true' }));
  await write('tools.yaml', serviceYaml('tools', 'grafana', ip(4), { app: 'grafana' }));
  await write('other.yaml', serviceYaml('other', 'orders', ip(5), { app: 'orders', tier: 'web' }));

  const scope = serviceScopeOf({ namespaces: ['shop', 'tools'], selector: 'app notin (db),!legacy' })!;
  const agent = agentOn(t, new ScopedServiceSource(new ManifestSource({ paths: [dir] }), scope));
  await agent.start();
  t.deepEqual(served(agent), ['shop/orders:p', 'tools/grafana:p']);
  t.is((await tcpRequest(ip(1), 7000)).toString(), 'orders', 'the endpoints of a served Service follow it');
  t.true(await tcpRefused(ip(5), 7000), 'a namespace not asked for is not served');

  await write('orders.yaml', serviceYaml('shop', 'orders', ip(1), { app: 'orders', legacy: 'yes' }));
  await waitFor('orders out of scope', () => served(agent).join() === 'tools/grafana:p');
  t.true(await tcpRefused(ip(1), 7000));
  await write('orders.yaml', serviceYaml('shop', 'orders', ip(1), { app: 'orders' }));
  await waitFor('orders back', () => served(agent).includes('shop/orders:p'));
  t.is((await tcpRequest(ip(1), 7000)).toString(), 'orders');
});

test('API: the same filter on the client; the watches stay cluster-wide (the RBAC is unchanged)', async (t) => {
  const api = await TestApiServer.start();
  t.teardown(() => api.close());
  const svc = (namespace: string, name: string, clusterIP: string, labels: Record<string, string>): KubeObject => ({
    metadata: { namespace, name, labels },
    spec: { type: 'ClusterIP', clusterIP, clusterIPs: [clusterIP], ports: [{ name: 'p', port: 7000, protocol: 'TCP', targetPort: 7000 }] },
  });
  api.create('services', svc('shop', 'orders', ip(11), { app: 'orders' }));
  api.create('services', svc('shop', 'db', ip(12), { app: 'db' }));
  api.create('services', svc('other', 'orders', ip(13), { app: 'orders' }));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(api.kubeconfig());
  const scope = serviceScopeOf({ namespaces: ['shop'], selector: 'app=orders' })!;
  const agent = agentOn(t, new ScopedServiceSource(new KubeSource({ kubeConfig, backoff: { initialMs: 50, maxMs: 400 } }), scope));
  await agent.start();
  t.deepEqual(served(agent), ['shop/orders:p']);
  t.true(api.requests.filter((r) => r.resource !== undefined).every((r) => r.path === '/api/v1/services' || r.path === '/apis/discovery.k8s.io/v1/endpointslices'));

  api.update('services', svc('shop', 'db', ip(12), { app: 'orders' }));
  await waitFor('db now selected', () => served(agent).join() === 'shop/db:p,shop/orders:p');
  api.update('services', svc('shop', 'orders', ip(11), { app: 'carts' }));
  await waitFor('orders no longer selected', () => served(agent).join() === 'shop/db:p');
});
