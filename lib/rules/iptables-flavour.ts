import { RulesError } from '../errors.js';
import type { IPFamily } from '../model/ip-address.js';
import type { CommandRunner } from './command-runner.js';
import { resolveSystemBinary } from './command-runner.js';

/**
 * Which iptables the node uses. Since 1.8 there are two: `iptables-nft` (rules stored as nftables
 * rules) and `iptables-legacy` (the old x_tables kernel blob). Both can be active at once, and packets
 * then pass through both rule sets, so using the "wrong" one works badly and confuses whoever debugs the
 * node. Like kube-proxy's iptables-wrapper we use the flavour that already holds rules.
 */

export type IptablesFlavour = 'nft' | 'legacy';

export const FLAVOURS: readonly IptablesFlavour[] = ['nft', 'legacy'];

/** The binaries of one flavour and family, as absolute paths. */
export interface IptablesCommands {
  readonly flavour: IptablesFlavour;
  readonly family: IPFamily;
  /** `iptables-nft`, `ip6tables-legacy`, ... (used for `-S CHAIN`). */
  readonly iptables: string;
  readonly save: string;
  readonly restore: string;
}

/**
 * The commands of a flavour and family: the suffixed binaries (`iptables-nft-restore`), else the plain
 * ones (`iptables-restore`) when `iptables -V` says they are that flavour; undefined when neither exists.
 */
export async function iptablesCommands(runner: CommandRunner, flavour: IptablesFlavour, family: IPFamily): Promise<IptablesCommands | undefined> {
  const base = family === 'IPv4' ? 'iptables' : 'ip6tables';
  const suffixed = await resolveAll([`${base}-${flavour}`, `${base}-${flavour}-save`, `${base}-${flavour}-restore`]);
  if (suffixed) return { flavour, family, iptables: suffixed[0], save: suffixed[1], restore: suffixed[2] };
  const plain = await resolveAll([base, `${base}-save`, `${base}-restore`]);
  if (plain && (await versionFlavour(runner, plain[0])) === flavour) {
    return { flavour, family, iptables: plain[0], save: plain[1], restore: plain[2] };
  }
  return undefined;
}

export interface FlavourDetection {
  readonly flavour: IptablesFlavour;
  /** Why, for the log: `only iptables-nft installed`, `legacy has KUBE- chains`, ... */
  readonly reason: string;
}

/**
 * Detects the node's flavour: if both are installed, the one with KUBE- chains (ours, the legacy
 * proxy's, kubelet's canaries), else the one with more rules, else nft; if only one is installed, that
 * one; else whatever plain `iptables -V` reports. Runs at most 4 iptables-save commands.
 */
export async function detectIptablesFlavour(runner: CommandRunner): Promise<FlavourDetection> {
  const [nft, legacy] = await Promise.all([resolveSystemBinary('iptables-nft-save'), resolveSystemBinary('iptables-legacy-save')]);
  if (nft && legacy) {
    const [nftState, legacyState] = await Promise.all([savedState(runner, 'nft'), savedState(runner, 'legacy')]);
    if (nftState.kubeChains && !legacyState.kubeChains) return { flavour: 'nft', reason: 'nft has KUBE- chains' };
    if (legacyState.kubeChains && !nftState.kubeChains) return { flavour: 'legacy', reason: 'legacy has KUBE- chains' };
    if (legacyState.rules > nftState.rules) return { flavour: 'legacy', reason: 'legacy has more rules' };
    return { flavour: 'nft', reason: nftState.rules > 0 ? 'nft has more rules' : 'no rules in either, default nft' };
  }
  if (nft) return { flavour: 'nft', reason: 'only iptables-nft installed' };
  if (legacy) return { flavour: 'legacy', reason: 'only iptables-legacy installed' };
  const plain = await resolveSystemBinary('iptables');
  const flavour = plain ? await versionFlavour(runner, plain) : undefined;
  if (!flavour) throw new RulesError('iptables not found (looked for iptables-nft, iptables-legacy and iptables)');
  return { flavour, reason: 'iptables -V' };
}

/** `iptables v1.8.9 (nf_tables)` → nft; `(legacy)` or no mode at all (before 1.8) → legacy. */
async function versionFlavour(runner: CommandRunner, binary: string): Promise<IptablesFlavour | undefined> {
  const result = await runner([binary, '-V']);
  if (result.code !== 0) return undefined;
  return /nf_tables/.test(result.stdout + result.stderr) ? 'nft' : 'legacy';
}

async function savedState(runner: CommandRunner, flavour: IptablesFlavour): Promise<{ kubeChains: boolean; rules: number }> {
  const saves = await Promise.all(
    (['iptables', 'ip6tables'] as const).map(async (base) => {
      const save = await resolveSystemBinary(`${base}-${flavour}-save`);
      // Plain save, no -t: asking legacy for a table it does not have yet would make the kernel load it.
      return save ? (await runner([save])).stdout : '';
    }),
  );
  const text = saves.join('\n');
  return { kubeChains: /^:KUBE-/m.test(text), rules: (text.match(/^-A /gm) ?? []).length };
}

async function resolveAll(names: readonly string[]): Promise<[string, string, string] | undefined> {
  const paths = await Promise.all(names.map((n) => resolveSystemBinary(n)));
  return paths.every((p): p is string => p !== undefined) ? (paths as [string, string, string]) : undefined;
}
