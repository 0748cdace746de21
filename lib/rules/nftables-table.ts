import type { CommandRunner } from './command-runner.js';
import { resolveSystemBinary, runChecked } from './command-runner.js';

/** The one nftables table of the project: every chain, map and set of `--redirect nftables` lives in it. */
export const NFT_FAMILY = 'inet';
export const NFT_TABLE = 'kube-userspace-proxy';

/**
 * Deletes our table if it exists. `add table` + `delete table` in one transaction is the idiom for
 * "delete, and do not fail if missing" (a bare `delete table` fails the transaction on a missing table).
 * Returns whether there was a table to delete; false, too, when nft is not installed.
 */
export async function removeNftTable(runner: CommandRunner, nft?: string): Promise<boolean> {
  const binary = nft ?? (await resolveSystemBinary('nft'));
  if (!binary) return false;
  const listed = await runChecked(runner, [binary, 'list', 'tables', NFT_FAMILY], undefined, 'nft list tables');
  const present = listed.stdout.split('\n').some((line) => line.trim() === `table ${NFT_FAMILY} ${NFT_TABLE}`);
  if (!present) return false;
  await runChecked(runner, [binary, '-f', '-'], `add table ${NFT_FAMILY} ${NFT_TABLE}\ndelete table ${NFT_FAMILY} ${NFT_TABLE}\n`, 'nft delete table');
  return true;
}
