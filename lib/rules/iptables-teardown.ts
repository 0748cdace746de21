import type { CommandRunner } from './command-runner.js';
import { commandError, runChecked } from './command-runner.js';
import { OUR_CHAINS } from './iptables-chains.js';
import type { IptablesTable } from './iptables-chains.js';
import type { IptablesCommands } from './iptables-flavour.js';
import type { SavedTable } from './iptables-save-parser.js';
import { jumpTarget, parseIptablesSave } from './iptables-save-parser.js';

const UNSUPPORTED = /can't initialize|does not exist|not supported|Protocol not available|Address family not supported/i;

/**
 * Removes our chains (the legacy kube-proxy userspace chains: same names) from one iptables flavour and
 * family in one iptables-restore transaction: flush each chain, delete every rule anywhere that jumps
 * to one, delete the chains. Reads the rules with a plain iptables-save first, so that only what exists
 * is named (iptables-restore fails the whole transaction on a `-D` or `-X` that finds nothing) and so
 * that legacy iptables is not made to load tables the node does not use.
 *
 * Returns what was removed, e.g. `ip6tables-nft nat KUBE-PORTALS-HOST`; empty when nothing was there.
 */
export async function removeIptablesChains(runner: CommandRunner, commands: IptablesCommands): Promise<string[]> {
  const argv = [commands.save];
  const saved = await runner(argv);
  if (saved.code !== 0) {
    // A kernel without this flavour/family (no ip6_tables, say) has nothing of ours in it either.
    if (UNSUPPORTED.test(saved.stderr)) return [];
    throw commandError(argv, saved, `${commands.family} ${commands.flavour} iptables-save`);
  }
  const { text, removed } = teardownText(parseIptablesSave(saved.stdout));
  if (removed.length === 0) return [];
  await runChecked(runner, [commands.restore, '--noflush', '-w', '5'], text, `${commands.family} ${commands.flavour} iptables-restore`);
  const binary = commands.family === 'IPv4' ? 'iptables' : 'ip6tables';
  return removed.map((r) => `${binary}-${commands.flavour} ${r}`);
}

/** The restore transaction that removes our chains and every jump to them; `removed` lists `table chain` pairs. */
export function teardownText(tables: ReadonlyMap<string, SavedTable>): { text: string; removed: string[] } {
  const lines: string[] = [];
  const removed: string[] = [];
  for (const name of Object.keys(OUR_CHAINS) as IptablesTable[]) {
    const table = tables.get(name);
    const ours = OUR_CHAINS[name].filter((c) => table?.chains.includes(c));
    if (!table || ours.length === 0) continue;
    lines.push(`*${name}`);
    // Declaring a chain in a --noflush transaction flushes it, so its own rules need no -D.
    for (const chain of ours) lines.push(`:${chain} - [0:0]`);
    for (const rule of table.rules) {
      if (!ours.includes(rule.chain) && jumpTarget(rule.spec, ours)) lines.push(`-D ${rule.chain} ${rule.spec}`);
    }
    for (const chain of ours) {
      lines.push(`-X ${chain}`);
      removed.push(`${name} ${chain}`);
    }
    lines.push('COMMIT');
  }
  return { text: lines.length ? `${lines.join('\n')}\n` : '', removed };
}
