import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { Agent } from '../../lib/agent/agent.js';
import { DEFAULT_CONFIG } from '../../lib/config/config.js';
import { ClusterDns } from '../../lib/dns/cluster-dns.js';
import type { ClusterDnsConfig } from '../../lib/dns/cluster-dns.js';
import { FanOutSource } from '../../lib/source/fan-out-source.js';
import { ManifestSource } from '../../lib/source/manifest-source.js';

export interface DnsFixture {
  /** With `proxy`: the agent proxying the same manifests' services. */
  readonly agent: Agent | undefined;
  readonly dns: ClusterDns;
  /** Where the DNS server listens (UDP and TCP). */
  readonly server: { host: string; port: number };
  readonly dir: string;
  /** Writes a manifest file atomically (temp + rename, as editors do). */
  write(name: string, yaml: string): Promise<void>;
  remove(name: string): Promise<void>;
}

export interface DnsFixtureOptions {
  readonly config?: Partial<ClusterDnsConfig>;
  /** The upstream name servers' port (forwarding tests). */
  readonly upstreamPort?: number;
  /** Also proxy the services, as the command does (one source, the agent and the zone fed from it). */
  readonly proxy?: boolean;
}

/**
 * The DNS server fed from a temporary manifest directory, with the agent when asked, as the
 * command wires them (--manifests DIR --dns-bind-address 127.0.0.1:0); removed in teardown.
 */
export async function startDns(t: ExecutionContext, files: Record<string, string>, options: DnsFixtureOptions = {}): Promise<DnsFixture> {
  const { config = {}, upstreamPort, proxy = false } = options;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-dns-'));
  const write = async (name: string, yaml: string): Promise<void> => {
    const tmp = path.join(dir, `.${name}.tmp`);
    await writeFile(tmp, yaml);
    await rename(tmp, path.join(dir, name));
  };
  for (const [name, yaml] of Object.entries(files)) await write(name, yaml);
  const dns = new ClusterDns({
    config: {
      dnsBindAddress: '127.0.0.1:0',
      clusterDomain: DEFAULT_CONFIG.clusterDomain,
      dnsTtlMs: DEFAULT_CONFIG.dnsTtlMs,
      dnsUpstream: 'refuse',
      resolvConf: path.join(dir, 'no-resolv.conf'),
      ...config,
    },
    ...(upstreamPort !== undefined ? { upstreamPort } : {}),
  });
  const source = new ManifestSource({ paths: [dir] });
  const agent = proxy
    ? new Agent({
        config: { bindAddress: '127.0.0.1', udpTimeoutMs: 30_000, udpMaxSessions: 1000, syncPeriodMs: 200, minSyncPeriodMs: 0 },
        source: new FanOutSource(source, [dns.zone]),
      })
    : undefined;
  t.teardown(async () => {
    agent?.destroy();
    source.destroy();
    dns.destroy();
    await rm(dir, { recursive: true, force: true });
  });
  await dns.start();
  if (agent) await agent.start();
  else await source.start(dns.zone);
  return { agent, dns, server: dns.server.address()!, dir, write, remove: (name) => rm(path.join(dir, name), { force: true }) };
}
