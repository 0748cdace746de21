/**
 * How long a sync takes, and how many processes it runs, for 1,000 / 5,000 / 10,000 service ports,
 * with each rule backend, inside throwaway network namespaces (the host's firewall is never touched).
 *
 *   sudo node dist/bench/rules-bench.js [--out bench-results/rules-bench.json] [--sizes 1000,5000,10000] [--reps 3] [--mix mixed|clusterip]
 *
 * Measured per backend and size (median of --reps runs):
 * - scratch: the first sync of N service ports into empty chains/table;
 * - change:  at the largest size, a sync in which one service port changed (new proxy port);
 * - execs:   the commands one sync runs (must not grow with N).
 *
 * The service ports (--mix mixed) are a mix: every one has a ClusterIP (one in ten UDP), one in ten a
 * NodePort, one in twenty an external IP and one in twenty a LoadBalancer IP; --mix clusterip gives each
 * a TCP ClusterIP only. Both IP families are enabled, as in a default configuration; the portals are IPv4.
 * The one-service change moves one (UDP, in the mix) service port to a new proxy port, so it includes
 * the conntrack deletion that follows.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { configureLogging } from '../lib/log.js';
import { servicePortName } from '../lib/model/service-port-name.js';
import type { CommandRunner } from '../lib/rules/command-runner.js';
import { countingRunner, netnsRunner, requireSystemBinary, resolveSystemBinary } from '../lib/rules/command-runner.js';
import { IptablesRules } from '../lib/rules/iptables-rules.js';
import { NftablesRules } from '../lib/rules/nftables-rules.js';
import type { Portal, RuleBackend, RuleContext, ServicePortRules } from '../lib/rules/rule-backend.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench-results/rules-bench.json' },
    sizes: { type: 'string', default: '1000,5000,10000' },
    reps: { type: 'string', default: '3' },
    mix: { type: 'string', default: 'mixed' },
  },
});
if (values.mix !== 'mixed' && values.mix !== 'clusterip') throw new Error('--mix must be mixed or clusterip');
const MIXED = values.mix === 'mixed';
configureLogging('warn', 'text');
const SIZES = values.sizes!.split(',').map(Number);
const REPS = Number(values.reps);
const CONTEXT: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: '10.0.0.5', hostIPv6: 'fd00::5', nodePortIPs: undefined };

interface BackendCase {
  readonly name: string;
  readonly available: () => Promise<string | undefined>;
  readonly make: (runner: CommandRunner) => RuleBackend;
}

const CASES: readonly BackendCase[] = [
  {
    name: 'iptables-nft',
    available: async () => ((await resolveSystemBinary('iptables-nft-restore')) ? undefined : 'iptables-nft not installed'),
    make: (runner) => new IptablesRules({ runner, flavour: 'nft' }),
  },
  { name: 'iptables-legacy', available: legacyAvailable, make: (runner) => new IptablesRules({ runner, flavour: 'legacy' }) },
  {
    name: 'nftables',
    available: async () => ((await resolveSystemBinary('nft')) ? undefined : 'nft not installed'),
    make: (runner) => new NftablesRules({ runner }),
  },
];

interface Row {
  backend: string;
  servicePorts: number;
  rules: number;
  scratchMs: number;
  scratchExecs: number;
  changeMs?: number;
  changeExecs?: number;
}

function servicePorts(n: number, changed = -1): ServicePortRules[] {
  return Array.from({ length: n }, (_, i) => {
    const portals: Portal[] = [{ ip: `10.96.${(i >> 8) & 255}.${i & 255}`, port: 80 + (i >> 16), kind: 'clusterIP' }];
    if (MIXED && i % 20 === 2) portals.push({ ip: `203.0.${(i >> 8) & 255}.${i & 255}`, port: 80, kind: 'externalIP' });
    if (MIXED && i % 20 === 3) portals.push({ ip: `198.51.${(i >> 8) & 255}.${i & 255}`, port: 80, kind: 'loadBalancerIP' });
    return {
      spn: servicePortName(`ns-${i % 100}`, `svc-${i}`, 'http'),
      protocol: MIXED && i % 10 === 0 ? 'UDP' : 'TCP',
      portals,
      nodePort: MIXED && i % 10 === 1 ? 30000 + ((i / 10) | 0) : 0,
      proxyPort: 20000 + (i % 40000) + (i === changed ? 1 : 0),
    };
  });
}

async function withNetns<T>(fn: (runner: CommandRunner) => Promise<T>): Promise<T> {
  const ip = await requireSystemBinary('ip');
  const name = `kup-rules-bench-${randomBytes(4).toString('hex')}`;
  const added = spawnSync(ip, ['netns', 'add', name], { encoding: 'utf8' });
  if (added.status !== 0) throw new Error(`ip netns add failed: ${added.stderr}`);
  try {
    return await fn(await netnsRunner(name, { timeoutMs: 120_000 }));
  } finally {
    spawnSync(ip, ['netns', 'del', name]);
  }
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function measure(c: BackendCase, n: number, withChange: boolean): Promise<Row> {
  return withNetns(async (base) => {
    const counter = countingRunner(base);
    const backend = c.make(counter.runner);
    await backend.start();
    const rules = servicePorts(n);
    const changed = servicePorts(n, n >> 1);
    const rendered = backend.render(rules, CONTEXT);
    const ruleCount = rendered.split('\n').filter((l) => /^-A KUBE-|^\t\t(meta|ip|ip6) /.test(l)).length;
    const scratch: number[] = [];
    let scratchExecs = 0;
    for (let r = 0; r < REPS; r++) {
      await backend.sync([], CONTEXT);
      counter.reset();
      scratch.push(await timed(() => backend.sync(rules, CONTEXT)));
      scratchExecs = counter.count();
    }
    const row: Row = { backend: c.name, servicePorts: n, rules: ruleCount, scratchMs: median(scratch), scratchExecs };
    if (withChange) {
      const change: number[] = [];
      for (let r = 0; r < REPS; r++) {
        counter.reset();
        change.push(await timed(() => backend.sync(r % 2 === 0 ? changed : rules, CONTEXT)));
        row.changeExecs = counter.count();
      }
      row.changeMs = median(change);
    }
    await backend.close();
    return row;
  });
}

async function legacyAvailable(): Promise<string | undefined> {
  if (!(await resolveSystemBinary('iptables-legacy-restore'))) return 'iptables-legacy not installed';
  return withNetns(async (runner) => {
    const probe = await runner([(await resolveSystemBinary('iptables-legacy'))!, '-w', '5', '-t', 'nat', '-S', 'PREROUTING']);
    return probe.code === 0 ? undefined : `no legacy nat table: ${probe.stderr.trim()}`;
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('rules-bench needs root (it creates network namespaces)\n');
    process.exit(1);
  }
  const rows: Row[] = [];
  const skipped: Record<string, string> = {};
  for (const c of CASES) {
    const why = await c.available();
    if (why) {
      skipped[c.name] = why;
      continue;
    }
    for (const n of SIZES) {
      const row = await measure(c, n, n === Math.max(...SIZES));
      rows.push(row);
      process.stderr.write(`${c.name} ${n}: ${row.scratchMs.toFixed(0)} ms\n`);
    }
  }
  const fmt = (x: number | undefined): string => (x === undefined ? '' : x.toFixed(0));
  const header = ['backend', 'service ports', 'rules', 'scratch ms', 'execs/sync', 'one-change ms', 'execs/sync'];
  const lines = rows.map((r) => [
    r.backend,
    String(r.servicePorts),
    String(r.rules),
    fmt(r.scratchMs),
    String(r.scratchExecs),
    fmt(r.changeMs),
    r.changeExecs === undefined ? '' : String(r.changeExecs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`${[row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n')}\n`);
  for (const [name, why] of Object.entries(skipped)) process.stdout.write(`skipped ${name}: ${why}\n`);
  const result = { date: new Date().toISOString(), node: process.version, reps: REPS, mix: values.mix, context: CONTEXT, rows, skipped };
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote ${values.out}\n`);
}

await main();
