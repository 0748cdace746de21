import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import type { AgentConfig } from '../../lib/agent/agent.js';
import type { ProxySocketFactory } from '../../lib/proxy/proxy-socket-factory.js';
import type { LoadBalancer } from '../../lib/balancer/load-balancer.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';

export interface AgentFixture {
  readonly agent: Agent;
  readonly dir: string;
  /** Writes a manifest file atomically (temp + rename, as editors do). */
  write(name: string, yaml: string): Promise<void>;
  remove(name: string): Promise<void>;
}

/** An agent fed from a temporary manifest directory; destroyed and removed in teardown. */
export async function startAgent(t: ExecutionContext, files: Record<string, string>, config: Partial<AgentConfig> = {}, balancer?: LoadBalancer, sockets?: ProxySocketFactory): Promise<AgentFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-agent-'));
  const write = async (name: string, yaml: string): Promise<void> => {
    const tmp = path.join(dir, `.${name}.tmp`);
    await writeFile(tmp, yaml);
    await rename(tmp, path.join(dir, name));
  };
  for (const [name, yaml] of Object.entries(files)) await write(name, yaml);
  const agent = new Agent({
    config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 200, minSyncPeriodMs: 0, ...config },
    source: new ManifestSource({ paths: [dir] }),
    ...(balancer ? { balancer } : {}),
    ...(sockets ? { sockets } : {}),
  });
  t.teardown(async () => {
    agent.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  await agent.start();
  return { agent, dir, write, remove: (name) => rm(path.join(dir, name), { force: true }) };
}

export interface PortYaml {
  name: string;
  port: number;
  nodePort?: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  targetPort?: number | string;
}

/** A Service manifest. */
export function serviceYaml(
  name: string,
  clusterIP: string,
  ports: PortYaml[],
  extra: { externalIPs?: string[]; affinityTimeout?: number; type?: string; namespace?: string; internalTrafficPolicy?: string; externalTrafficPolicy?: string } = {},
): string {
  const lines = [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    `  namespace: ${extra.namespace ?? 'default'}`,
    'spec:',
    `  type: ${extra.type ?? 'ClusterIP'}`,
    `  clusterIP: "${clusterIP}"`,
  ];
  if (extra.internalTrafficPolicy) lines.push(`  internalTrafficPolicy: ${extra.internalTrafficPolicy}`);
  if (extra.externalTrafficPolicy) lines.push(`  externalTrafficPolicy: ${extra.externalTrafficPolicy}`);
  if (extra.externalIPs) lines.push(`  externalIPs: [${extra.externalIPs.map((ip) => `"${ip}"`).join(', ')}]`);
  if (extra.affinityTimeout !== undefined) {
    lines.push('  sessionAffinity: ClientIP', '  sessionAffinityConfig:', '    clientIP:', `      timeoutSeconds: ${extra.affinityTimeout}`);
  }
  lines.push('  ports:');
  for (const p of ports) {
    lines.push(`    - name: "${p.name}"`, `      port: ${p.port}`, `      protocol: ${p.protocol ?? 'TCP'}`);
    if (p.targetPort !== undefined) lines.push(`      targetPort: ${p.targetPort}`);
    if (p.nodePort !== undefined) lines.push(`      nodePort: ${p.nodePort}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface SliceEndpoint {
  ip: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  nodeName?: string;
}

/** An EndpointSlice manifest with one port list for all its endpoints. */
export function sliceYaml(service: string, sliceName: string, ports: Array<{ name: string; port: number; protocol?: string }>, endpoints: SliceEndpoint[], namespace = 'default'): string {
  const lines = [
    'apiVersion: discovery.k8s.io/v1',
    'kind: EndpointSlice',
    'metadata:',
    `  name: ${sliceName}`,
    `  namespace: ${namespace}`,
    '  labels:',
    `    kubernetes.io/service-name: ${service}`,
    'addressType: IPv4',
    'ports:',
  ];
  for (const p of ports) lines.push(`  - name: "${p.name}"`, `    port: ${p.port}`, `    protocol: ${p.protocol ?? 'TCP'}`);
  lines.push('endpoints:');
  for (const e of endpoints) {
    lines.push(`  - addresses: ["${e.ip}"]`);
    if (e.nodeName !== undefined) lines.push(`    nodeName: ${e.nodeName}`);
    lines.push('    conditions:', `      ready: ${e.ready ?? true}`);
    if (e.serving !== undefined) lines.push(`      serving: ${e.serving}`);
    if (e.terminating !== undefined) lines.push(`      terminating: ${e.terminating}`);
  }
  return `${lines.join('\n')}\n`;
}
