import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { request } from 'undici';
import { Agent } from '../../lib/agent/agent.js';
import type { AgentConfig } from '../../lib/agent/agent.js';
import type { LoadBalancer } from '../../lib/balancer/load-balancer.js';
import { RulesError } from '../../lib/errors.js';
import type { RuleBackend } from '../../lib/rules/rule-backend.js';
import { HealthServer } from '../../lib/server/health-server.js';
import { Metrics } from '../../lib/server/metrics.js';
import { MetricsServer } from '../../lib/server/metrics-server.js';
import type { AgentView } from '../../lib/server/agent-view.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';
import type { ServiceSource, SourceHealth } from '../../lib/source/service-source.js';

export interface ProxyFixture {
  readonly agent: Agent;
  write(name: string, yaml: string): Promise<void>;
}

export interface ProxyFixtureOptions {
  readonly config?: Partial<AgentConfig>;
  readonly balancer?: LoadBalancer;
  readonly rules?: RuleBackend;
  /** Wraps the manifest source (to give it a health() of the test's choosing). */
  readonly source?: (manifests: ServiceSource) => ServiceSource;
}

/** A real Agent fed by a real ManifestSource over a temporary directory; destroyed in teardown. */
export async function startProxy(t: ExecutionContext, files: Record<string, string>, options: ProxyFixtureOptions = {}): Promise<ProxyFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-server-'));
  const write = async (name: string, yaml: string): Promise<void> => {
    const tmp = path.join(dir, `.${name}.tmp`);
    await writeFile(tmp, yaml);
    await rename(tmp, path.join(dir, name));
  };
  for (const [name, yaml] of Object.entries(files)) await write(name, yaml);
  const manifests = new ManifestSource({ paths: [dir] });
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 200, minSyncPeriodMs: 0, ...options.config },
    source: options.source ? options.source(manifests) : manifests,
    ...(options.balancer ? { balancer: options.balancer } : {}),
    ...(options.rules ? { rules: options.rules } : {}),
  });
  t.teardown(async () => {
    agent.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  await agent.start();
  return { agent, write };
}

/** A manifest source that reports the given health, as the Kubernetes source does. */
export function withHealth(source: ServiceSource, health: () => SourceHealth): ServiceSource {
  return {
    kind: 'kubernetes',
    start: (handler) => source.start(handler),
    close: () => source.close(),
    destroy: () => source.destroy(),
    health,
  };
}

/** A RuleBackend whose sync() fails (as iptables-restore would) while `failing` says so; counts calls. */
export class FailingRules implements RuleBackend {
  readonly mode = 'iptables' as const;
  failing = true;
  syncs = 0;
  async start(): Promise<void> {}
  async sync(): Promise<void> {
    this.syncs++;
    if (this.failing) throw new RulesError('iptables-restore failed: exit status 4', { command: ['iptables-restore', '--noflush'], stderr: 'iptables-restore: line 3 failed' });
  }
  render(): string {
    return '';
  }
  async close(): Promise<void> {}
}

/** Metrics and a MetricsServer on 127.0.0.1, kernel-chosen port; closed in teardown. */
export async function startMetricsServer(t: ExecutionContext, agent: AgentView, defaultMetrics = true): Promise<{ server: MetricsServer; metrics: Metrics; url: string; address: string }> {
  const metrics = new Metrics({ agent, defaultMetrics });
  const server = new MetricsServer({ address: '127.0.0.1:0', agent, metrics });
  t.teardown(async () => {
    await server.close();
    metrics.close();
  });
  await server.start();
  const a = server.address()!;
  return { server, metrics, url: server.url()!, address: `${a.host}:${a.port}` };
}

/** A HealthServer on 127.0.0.1, kernel-chosen port; closed in teardown. */
export async function startHealthServer(t: ExecutionContext, agent: AgentView): Promise<{ server: HealthServer; url: string }> {
  const server = new HealthServer({ address: '127.0.0.1:0', agent });
  t.teardown(() => server.close());
  await server.start();
  return { server, url: server.url()! };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export async function get(url: string, method: 'GET' | 'HEAD' | 'POST' = 'GET'): Promise<HttpAnswer> {
  const res = await request(url, { method });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/**
 * The value of one sample in Prometheus text: `name` with exactly `labels` (any order), or
 * undefined when there is no such line.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_]+=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    if (got === want) return Number(m[3]);
  }
  return undefined;
}
