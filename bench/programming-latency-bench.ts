/**
 * The time from an EndpointSlice change to the new endpoint serving, as kube-proxy's
 * kubeproxy_network_programming_duration_seconds reports it and as a client sees it.
 *
 *   node dist/bench/programming-latency-bench.js [--updates 100] [--out bench-results/programming-latency.json]
 *
 * The real path of a cluster: the test API server (the real wire protocol), the real
 * @kubernetes/client-node informers, the agent (none mode, loopback), its Metrics. Each update
 * moves a service's only endpoint to the other of two backends and sets the slice's
 * endpoints.kubernetes.io/last-change-trigger-time to the moment of the write, as the EndpointSlice
 * controller does. Measured per update:
 * - observed: the value the histogram observed (from the agent's diagnostics channel: exact, where
 *   the histogram keeps only buckets), and at the end the p50/p99 Prometheus would estimate from
 *   the histogram (histogram_quantile's linear interpolation in kube-proxy's buckets);
 * - client:   write time → first successful connection answered by the new endpoint (polled).
 * Updates are spaced so that each is in force before the next is written.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent } from '../lib/agent/agent.js';
import { configureLogging } from '../lib/log.js';
import { Metrics, PROGRAMMED_CHANNEL_NAME } from '../lib/server/metrics.js';
import { KubeSource } from '../lib/source/kube-source.js';
import { tcpName, tcpRequest } from '../spec/helpers/backends.js';
import type { Backend } from '../spec/helpers/backends.js';
import { TestApiServer } from '../spec/helpers/test-api-server.js';
import type { KubeObject } from '../spec/helpers/test-api-server.js';

const { values } = parseArgs({
  options: {
    updates: { type: 'string', default: '100' },
    out: { type: 'string', default: 'bench-results/programming-latency.json' },
  },
});
const UPDATES = Number(values.updates);
if (!Number.isInteger(UPDATES) || UPDATES < 1 || UPDATES > 10_000) throw new Error('--updates must be an integer from 1 to 10000');
configureLogging('warn', 'text');

const HOST = (n: number): string => `127.77.139.${n}`;
const SERVICE_IP = HOST(1);
const PORT = 7000;
const TRIGGER = 'endpoints.kubernetes.io/last-change-trigger-time';
/** How long one update may take to serve before the run gives up. */
const UPDATE_DEADLINE_MS = 10_000;

function slice(backend: Backend, triggerMs: number | undefined): KubeObject {
  return {
    metadata: { namespace: 'default', name: 'web-1', labels: { 'kubernetes.io/service-name': 'web' }, ...(triggerMs ? { annotations: { [TRIGGER]: new Date(triggerMs).toISOString() } } : {}) },
    addressType: 'IPv4',
    endpoints: [{ addresses: [backend.host], conditions: { ready: true } }],
    ports: [{ name: 'p', port: backend.port, protocol: 'TCP' }],
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q·count. */
function histogramQuantile(q: number, buckets: Array<[number, number]>): number {
  const total = buckets[buckets.length - 1]![1];
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) return le === Infinity ? prevLe : prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount || 1);
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

async function answeredBy(name: string, deadline: number): Promise<number> {
  for (;;) {
    const got = await tcpRequest(SERVICE_IP, PORT, undefined, 1000).catch(() => Buffer.alloc(0));
    if (got.toString() === name) return Date.now();
    if (Date.now() > deadline) throw new Error(`no answer from ${name} within ${UPDATE_DEADLINE_MS} ms`);
  }
}

const api = await TestApiServer.start();
const a = await tcpName('a', HOST(10));
const b = await tcpName('b', HOST(11), a.port);
api.create('services', {
  metadata: { namespace: 'default', name: 'web' },
  spec: { type: 'ClusterIP', clusterIP: SERVICE_IP, clusterIPs: [SERVICE_IP], ports: [{ name: 'p', port: PORT, protocol: 'TCP', targetPort: a.port }], sessionAffinity: 'None' },
  status: { loadBalancer: {} },
});
api.create('endpointslices', slice(a, undefined));
const kubeConfig = new KubeConfig();
kubeConfig.loadFromString(api.kubeconfig());
const source = new KubeSource({ kubeConfig, allowLoopbackEndpoints: true });
const agent = new Agent({ config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 30_000, minSyncPeriodMs: 1000 }, source });
const metrics = new Metrics({ agent, defaultMetrics: false });
const observed: number[] = [];
const onProgrammed = (m: unknown): void => void observed.push((m as { seconds: number }).seconds);
diagnosticsChannel.subscribe(PROGRAMMED_CHANNEL_NAME, onProgrammed);
const client: number[] = [];
try {
  await agent.start();
  await answeredBy('a', Date.now() + UPDATE_DEADLINE_MS);
  for (let i = 0; i < UPDATES; i++) {
    const next = i % 2 === 0 ? b : a;
    const written = Date.now();
    api.update('endpointslices', slice(next, written));
    client.push((await answeredBy(next.name, written + UPDATE_DEADLINE_MS)) - written);
  }
  const text = await metrics.render();
  const buckets: Array<[number, number]> = [];
  for (const m of text.matchAll(/^kubeproxy_network_programming_duration_seconds_bucket\{le="([^"]+)",ip_family="IPv4"\} (\d+)$/gm)) {
    buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  const count = Number(/^kubeproxy_network_programming_duration_seconds_count\{ip_family="IPv4"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  const obs = [...observed].sort((x, y) => x - y).map((s) => s * 1000);
  const cli = [...client].sort((x, y) => x - y);
  const result = {
    updates: UPDATES,
    histogramCount: count,
    observedMs: { p50: quantile(obs, 0.5), p99: quantile(obs, 0.99), max: obs[obs.length - 1] },
    histogramQuantileMs: { p50: histogramQuantile(0.5, buckets) * 1000, p99: histogramQuantile(0.99, buckets) * 1000 },
    clientMs: { p50: quantile(cli, 0.5), p99: quantile(cli, 0.99), max: cli[cli.length - 1] },
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify({ ...result, observedSeconds: observed, clientMs: client, summary: result }, null, 2)}\n`);
} finally {
  diagnosticsChannel.unsubscribe(PROGRAMMED_CHANNEL_NAME, onProgrammed);
  metrics.close();
  agent.destroy();
  await Promise.all([a.close(), b.close(), api.close()]);
}
