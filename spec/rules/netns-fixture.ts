import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { CommandResult, CommandRunner } from '../../lib/rules/command-runner.js';
import { netnsRunner, requireSystemBinary, spawnRunner } from '../../lib/rules/command-runner.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import type { RuleContext, ServicePortRules } from '../../lib/rules/rule-backend.js';

/**
 * A throwaway network namespace per test, so that rules are applied for real without touching the
 * host's firewall. Removed in teardown even when the test fails; deleting the namespace removes every
 * rule, table, address and interface in it.
 */
export interface RulesNetns {
  readonly name: string;
  readonly runner: CommandRunner;
  /** Runs a system binary (by name) in the namespace; throws unless it exits 0. */
  sh(name: string, ...args: string[]): Promise<string>;
  /** Like sh, but returns the whole result. */
  try(name: string, args: readonly string[], stdin?: string): Promise<CommandResult>;
}

/**
 * `test` where network namespaces can be made (root), or with CI=true (where they must be, and a
 * failure to make them fails the test); elsewhere `test.skip`: a real skip, never a pass.
 */
export const netnsTest = process.getuid?.() === 0 || process.env['CI'] === 'true' ? test : test.skip;

export async function createNetns(t: ExecutionContext): Promise<RulesNetns> {
  const name = `kup-rules-${randomBytes(4).toString('hex')}`;
  const host = spawnRunner();
  const ip = await requireSystemBinary('ip');
  const added = await host([ip, 'netns', 'add', name]);
  if (added.code !== 0) throw new Error(`ip netns add ${name} failed: ${added.stderr}`);
  t.teardown(async () => {
    const deleted = await host([ip, 'netns', 'del', name]);
    if (deleted.code !== 0) t.log(`ip netns del ${name} failed: ${deleted.stderr}`);
  });
  const runner = await netnsRunner(name, { timeoutMs: 30_000 });
  const tryRun = async (bin: string, args: readonly string[], stdin?: string): Promise<CommandResult> =>
    runner([bin.startsWith('/') ? bin : await requireSystemBinary(bin), ...args], stdin);
  const sh = async (bin: string, ...args: string[]): Promise<string> => {
    const result = await tryRun(bin, args);
    if (result.code !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  await sh('ip', 'link', 'set', 'lo', 'up');
  return { name, runner, sh, try: tryRun };
}

/** A temporary directory removed in teardown. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(`${tmpdir()}/kup-rules-`);
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The `-A` lines of our chains in iptables-save output, in order. */
export function ourRuleLines(save: string): string[] {
  return save.split('\n').filter((l) => /^-A KUBE-(PORTALS|NODEPORT|USERSPACE)-/.test(l));
}

/** Every line mentioning one of our chains (declarations, rules, jumps). */
export function kubeLines(save: string): string[] {
  return save.split('\n').filter((l) => /KUBE-(PORTALS|NODEPORT|USERSPACE)-/.test(l));
}

/** The jumps into our chains from built-in chains, as iptables-save prints them. */
export function jumpLines(save: string): string[] {
  return save.split('\n').filter((l) => /^-A (PREROUTING|OUTPUT|INPUT) .*-j KUBE-/.test(l));
}

/** The `-A` lines of a rendered restore text (without jump repairs). */
export function renderedRuleLines(text: string): string[] {
  return text.split('\n').filter((l) => /^-A KUBE-/.test(l));
}

// ── Fixtures ──────────────────────────────────────────────────────────────────────────────────

export const KUBERNETES: ServicePortRules = {
  spn: servicePortName('default', 'kubernetes', 'https'),
  protocol: 'TCP',
  portals: [{ ip: '10.96.0.1', port: 443, kind: 'clusterIP' }],
  nodePort: 0,
  proxyPort: 36000,
};

export const FRONTEND: ServicePortRules = {
  spn: servicePortName('web', 'frontend', 'http'),
  protocol: 'TCP',
  portals: [
    { ip: '10.96.0.10', port: 80, kind: 'clusterIP' },
    { ip: '203.0.113.7', port: 80, kind: 'externalIP' },
    { ip: '198.51.100.9', port: 80, kind: 'loadBalancerIP' },
    { ip: 'fd00:96::10', port: 80, kind: 'clusterIP' },
  ],
  nodePort: 30080,
  proxyPort: 36001,
};

export const DNS: ServicePortRules = {
  spn: servicePortName('kube-system', 'kube-dns', 'dns'),
  protocol: 'UDP',
  portals: [
    { ip: '10.96.0.53', port: 53, kind: 'clusterIP' },
    { ip: 'fd00:96:0:0::53', port: 53, kind: 'clusterIP' },
  ],
  nodePort: 30053,
  proxyPort: 36002,
};

export const FIXTURE: readonly ServicePortRules[] = [FRONTEND, DNS, KUBERNETES];

export const ANY: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: '10.0.0.5', hostIPv6: 'fd00::5', nodePortIPs: undefined };

export const SPECIFIC: RuleContext = { bindAddress: '10.0.0.5', hostIPv4: '10.0.0.5', hostIPv6: 'fd00::5', nodePortIPs: ['10.0.0.5', '192.168.1.5', 'fd00::5'] };
