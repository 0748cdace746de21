#!/usr/bin/env node
// First: it starts what can run while the modules below load.
import { releaseYoungGeneration } from '../lib/cli/start-early.js';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Agent } from '../lib/agent/agent.js';
import { parseFlags, usage } from '../lib/config/flags.js';
import { InvalidConfigError, ProxyError } from '../lib/errors.js';
import { configureLogging, logger } from '../lib/log.js';
import type { Logger } from '../lib/log.js';
import type { HealthServer } from '../lib/server/health-server.js';
import type { MetricsServer } from '../lib/server/metrics-server.js';
import type { Config } from '../lib/config/config.js';
import { DEFAULT_CONFIG } from '../lib/config/config.js';
import { applyOomScoreAdj } from '../lib/agent/oom-score-adj.js';
import { ownListenersOf } from '../lib/agent/own-listeners.js';
import { serviceSourceFor } from '../lib/agent/service-source-for.js';
import { withLocalNames } from '../lib/agent/local-names.js';
import type { ServiceSource } from '../lib/source/service-source.js';
import { localArgv } from '../lib/cli/local-command.js';
import type { LocalPlan } from '../lib/cli/local-command.js';
import { checkStartInputs } from '../lib/agent/start-inputs.js';

// Only what runs before the service source starts reading is imported here. The rest of the
// program (the agent, servers, rules, workers: about 0.4 s of CPU to load) is imported where it
// is needed, so that manifests are parsed on their thread while it loads.

const PROGRAM = 'kube-userspace-proxy';

/** The fields of a failure's one log line: its stable code and message when it is ours; else what it is (its stack, if asked). */
function failureFields(err: unknown, stack = false): { code?: string; error: string } {
  if (err instanceof ProxyError) return { code: err.code, error: err.message };
  return { error: String((stack && (err as Error)?.stack) || err) };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(commandLine: readonly string[]): Promise<number> {
  let argv = commandLine;
  let local: LocalPlan | undefined;
  if (argv[0] === 'local') {
    try {
      local = localArgv(argv.slice(1), { isRoot: process.getuid?.() === 0 });
    } catch (err) {
      if (!(err instanceof InvalidConfigError)) throw err;
      for (const p of err.problems) process.stderr.write(`${PROGRAM}: ${p}\n`);
      return 2;
    }
    argv = local.argv;
  }
  if (argv[0] === 'status') {
    // Only this subcommand needs an HTTP client: undici adds about 0.1 s to every proxy start.
    const { runStatus } = await import('../lib/cli/status-command.js');
    return runStatus([...argv.slice(1)]);
  }
  let parsed;
  try {
    parsed = parseFlags(argv, { isTTY: Boolean(process.stderr.isTTY) });
  } catch (err) {
    if (err instanceof InvalidConfigError) {
      for (const p of err.problems) process.stderr.write(`${PROGRAM}: ${p}\n`);
      process.stderr.write(`\n${usage(PROGRAM)}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.action === 'help') {
    process.stdout.write(`${usage(PROGRAM)}\n`);
    return 0;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`${PROGRAM} ${version()}\n`);
    return 0;
  }
  const { config } = parsed;
  configureLogging(config.logLevel, config.logFormat);
  const log = logger('main');
  // One line each: a setting accepted from kube-proxy's configuration that does nothing here.
  for (const w of parsed.warnings) log.warn('setting not applied', { setting: w.setting, reason: w.reason });
  if (parsed.action === 'write-config') {
    try {
      const { renderConfigFile } = await import('../lib/config/render-config-file.js');
      writeFileSync(parsed.file, renderConfigFile(config));
      process.stdout.write(`${PROGRAM}: wrote the effective configuration to ${parsed.file}\n`);
      return 0;
    } catch (err) {
      process.stderr.write(`${PROGRAM}: --write-config-to ${parsed.file}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (!config.cleanup && !config.dryRun) {
    // Before anything starts: a missing file is one line, not the start and stop of every server.
    const problems = checkStartInputs(config);
    for (const err of problems) log.error('start failed', failureFields(err));
    if (problems.length > 0) return 1;
  }
  log.info('kube-userspace-proxy starting', { version: version(), redirect: config.redirect, bindAddress: config.bindAddress });

  if (config.cleanup) {
    try {
      const [{ cleanupLeftovers }, { removeHostsBlock }] = await Promise.all([import('../lib/rules/cleanup.js'), import('../lib/names/hosts-file.js')]);
      const { removed } = await cleanupLeftovers();
      // The hosts block of a run that could not remove it (killed): --hosts-file's, else /etc/hosts's.
      const hostsFile = config.hostsFile ?? '/etc/hosts';
      if (removeHostsBlock(hostsFile)) removed.push(`hosts block in ${hostsFile}`);
      log.info('cleanup done', { removed: removed.length, what: removed.join(',') });
      return 0;
    } catch (err) {
      log.error('cleanup failed', { error: (err as Error).message });
      return 1;
    }
  }

  if (config.dryRun) {
    try {
      const { dryRunRules } = await import('../lib/agent/dry-run.js');
      process.stdout.write(await dryRunRules(config, await serviceSourceFor(config)));
      return 0;
    } catch (err) {
      log.error('dry run failed', { error: err instanceof ProxyError ? err.message : String(err) });
      return 1;
    }
  }

  const oomError = await applyOomScoreAdj(config.oomScoreAdj);
  if (oomError) {
    // As kube-proxy: not fatal. Only a value asked for is worth a warning; the default fails for
    // every unprivileged run.
    const fields = { oomScoreAdj: config.oomScoreAdj, error: oomError.message };
    if (config.oomScoreAdj === DEFAULT_CONFIG.oomScoreAdj) log.debug('cannot set oom_score_adj', fields);
    else log.warn('cannot set oom_score_adj', fields);
  }

  let agent: Agent;
  let named: ServiceSource | undefined;
  let dns: import('../lib/dns/cluster-dns.js').ClusterDns | undefined;
  try {
    const nodeName = config.hostnameOverride ?? os.hostname().toLowerCase();
    named = withLocalNames(
      await serviceSourceFor(
        config,
        ownListenersOf(config, () => agent?.listeners()),
      ),
      config,
    );
    // The DNS server (and its wire-format library, about 40 ms of CPU to load) only when asked for:
    // start-up loads modules while manifests are parsed, on the same cores.
    const [{ Agent }, { redirectFor }, { endpointConnectorFor }, { WorkerPool }, { descriptorLimits }, dnsModules] = await Promise.all([
      import('../lib/agent/agent.js'),
      import('../lib/agent/redirect-for.js'),
      import('../lib/agent/endpoint-connector-for.js'),
      import('../lib/workers/worker-pool.js'),
      import('../lib/agent/descriptor-limits.js'),
      config.dnsBindAddress !== '' ? Promise.all([import('../lib/dns/cluster-dns.js'), import('../lib/source/fan-out-source.js')]) : undefined,
    ]);
    let source: ServiceSource = named;
    if (dnsModules) {
      const [{ ClusterDns }, { FanOutSource }] = dnsModules;
      // --dns-bind-address: the zone sees every service the source delivers, the agent only proxied ones.
      dns = new ClusterDns({ config });
      // DNS sees what the agent sees, pool addresses included, and headless and ExternalName services too.
      source = new FanOutSource(named, [dns.zone]);
    }
    const { rules, assigner, allocator } = await redirectFor(config);
    const connector = await endpointConnectorFor(config);
    // Forwarded streams are opened in this process only: workers would need their own API clients.
    if (connector && config.workers > 1) log.warn('setting not applied', { setting: 'workers', value: config.workers, reason: '--dial-via port-forward serves every connection in this process' });
    // More than one process: workers share this one's TCP listeners (see WorkerPool).
    const pool = config.workers > 1 && !connector ? new WorkerPool({ workers: config.workers - 1, logLevel: config.logLevel, logFormat: config.logFormat }) : undefined;
    const { budget, udpMaxSessions } = descriptorLimits(config, log);
    agent = new Agent({ config: { ...config, nodeName, udpMaxSessions }, source, rules, assigner, allocator, sockets: pool, balancer: pool?.balancer, budget, ...(connector ? { connector } : {}) });
  } catch (err) {
    log.error('start failed', failureFields(err));
    // It may be reading the files already (and watching their directories).
    named?.destroy();
    return 1;
  }
  const servers = await startServers(config, agent, log);
  const { exitOnSignals } = await import('../lib/agent/signal-shutdown.js');

  exitOnSignals({
    agent,
    gracePeriodMs: config.shutdownGracePeriodMs,
    closeRest: async () => {
      await dns?.close();
      await servers.close();
    },
    log,
  });

  try {
    // Listening before the source syncs: until then in-zone questions get SERVFAIL, not a wrong NXDOMAIN.
    await dns?.start();
    await agent.start();
    releaseYoungGeneration();
    if (local) {
      const [{ parseAddress }, { formatReadyTable }] = await Promise.all([import('../lib/net/parse-address.js'), import('../lib/cli/ready-table.js')]);
      // Once, when ready: stdout carries only this table (logs go to stderr), so scripts can read it.
      const dnsAddress = config.dnsBindAddress !== '' ? parseAddress(config.dnsBindAddress, '--dns-bind-address') : undefined;
      process.stdout.write(formatReadyTable({ ports: agent.status(), clusterDomain: config.clusterDomain, dns: dnsAddress, hostsFile: config.hostsFile }));
    }
  } catch (err) {
    log.error('start failed', failureFields(err, true));
    agent.destroy();
    dns?.destroy();
    await servers.close();
    return 1;
  }
  return -1;
}

/**
 * The health and metrics servers, started before the agent so that /healthz answers 503 ("no sync
 * yet") during start-up. A server that cannot bind is logged and the proxy keeps serving: the
 * data path matters more than its instruments.
 */
async function startServers(config: Config, agent: Agent, log: Logger): Promise<{ close(): Promise<void> }> {
  const parts: Array<HealthServer | MetricsServer> = [];
  let metrics: import('../lib/server/metrics.js').Metrics | undefined;
  if (config.healthzBindAddress !== '') {
    const { HealthServer } = await import('../lib/server/health-server.js');
    parts.push(new HealthServer({ address: config.healthzBindAddress, agent }));
  }
  if (config.metricsBindAddress !== '') {
    const [{ Metrics }, { MetricsServer }] = await Promise.all([import('../lib/server/metrics.js'), import('../lib/server/metrics-server.js')]);
    metrics = new Metrics({ agent });
    parts.push(new MetricsServer({ address: config.metricsBindAddress, agent, metrics }));
  }
  for (const part of parts) {
    part.start().catch((err: unknown) => log.error('cannot start server', { error: (err as Error).message }));
  }
  return {
    close: async () => {
      await Promise.allSettled(parts.map((p) => p.close()));
      metrics?.close();
    },
  };
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${PROGRAM}: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
