import type { IPFamily } from '../model/ip-address.js';
import type { CommandRunner } from './command-runner.js';
import { spawnRunner } from './command-runner.js';
import { DEFAULT_STATE_DIR, removeRecordedAddresses } from './address-state.js';
import type { IptablesFlavour } from './iptables-flavour.js';
import { FLAVOURS, iptablesCommands } from './iptables-flavour.js';
import { removeIptablesChains } from './iptables-teardown.js';
import { NFT_FAMILY, NFT_TABLE, removeNftTable } from './nftables-table.js';
import { FAMILIES } from './rule-plan.js';
import { teardownError } from './teardown-error.js';

export interface CleanupOptions {
  /** The iptables flavours to clean (default both; false: none). A flavour not installed is skipped. */
  readonly iptables?: readonly IptablesFlavour[] | false;
  /** The IP families to clean in iptables (default both). */
  readonly families?: readonly IPFamily[];
  /** Remove our nftables table (default true). */
  readonly nftables?: boolean;
  /** Remove the service addresses recorded for this network namespace (default true). */
  readonly addresses?: boolean;
  /** Where AddressAssigner keeps its records (default /run/kube-userspace-proxy). */
  readonly stateDir?: string;
}

/**
 * `--cleanup`: removes everything this project (or the legacy kube-proxy userspace proxier, whose chains
 * have the same names) may have left: the KUBE-PORTALS-* / KUBE-NODEPORT-* chains and their jumps in
 * iptables-nft and iptables-legacy, IPv4 and IPv6; the `inet kube-userspace-proxy` nftables table; the
 * service addresses recorded by AddressAssigner. What is not there is not an error, nor is a tool that
 * is not installed. Every part is attempted; failures are collected and thrown together at the end.
 */
export async function cleanupLeftovers(runner: CommandRunner = spawnRunner(), options: CleanupOptions = {}): Promise<{ removed: string[] }> {
  const removed: string[] = [];
  const failures: unknown[] = [];
  const attempt = async (part: () => Promise<string[]>): Promise<void> => {
    try {
      removed.push(...(await part()));
    } catch (err) {
      failures.push(err);
    }
  };

  const flavours = options.iptables === false ? [] : (options.iptables ?? FLAVOURS);
  for (const flavour of flavours) {
    for (const family of options.families ?? FAMILIES) {
      await attempt(async () => {
        const commands = await iptablesCommands(runner, flavour, family);
        return commands ? removeIptablesChains(runner, commands) : [];
      });
    }
  }
  if (options.nftables !== false) {
    await attempt(async () => ((await removeNftTable(runner)) ? [`nft table ${NFT_FAMILY} ${NFT_TABLE}`] : []));
  }
  if (options.addresses !== false) {
    await attempt(() => removeRecordedAddresses(runner, options.stateDir ?? DEFAULT_STATE_DIR));
  }
  if (failures.length) throw teardownError(failures);
  return { removed };
}
