import { KubeConfig } from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { KubeSource } from '../../lib/source/kube-source.js';
import type { Backend } from './backends.js';
import { TestApiServer } from './test-api-server.js';
import type { KubeObject } from './test-api-server.js';

/**
 * The agent in this process fed by the real client-node informers from the test API server;
 * both are closed in teardown. Backends are on loopback, which the source refuses in production:
 * allowLoopbackEndpoints opens that one door for tests that may target only loopback.
 */
export async function startApiAgent(t: ExecutionContext, seed: (api: TestApiServer) => void): Promise<{ api: TestApiServer; agent: Agent }> {
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

/** A ClusterIP Service with one TCP port named p. */
export function apiService(name: string, ip: string, port: number): KubeObject {
  return {
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'p', port, protocol: 'TCP', targetPort: port }], sessionAffinity: 'None' },
    status: { loadBalancer: {} },
  };
}

/** An EndpointSlice of `service` for port p, one endpoint per backend (all on one port), each ready or not. */
export function apiSlice(name: string, service: string, backends: ReadonlyArray<{ backend: Backend; ready?: boolean }>, port = backends[0]?.backend.port ?? 1): KubeObject {
  return {
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: backends.map(({ backend, ready = true }) => ({ addresses: [backend.host], conditions: { ready }, nodeName: 'node-a' })),
    ports: [{ name: 'p', port, protocol: 'TCP' }],
  };
}
