import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { RulesError } from '../errors.js';
import { parseIP } from '../model/ip-address.js';
import type { CommandRunner } from './command-runner.js';
import { requireSystemBinary, runChecked } from './command-runner.js';

/**
 * The record of the service addresses `--assign-service-ips` added, so that a restart after a crash
 * (or `--cleanup`) can find and remove them. A file rather than an address label: labels (`lo:kup`)
 * exist only for IPv4 and must fit IFNAMSIZ with the interface name, and the file also tells us which
 * interface was used.
 *
 * The file is per network namespace — `<stateDir>/assigned-<inode>.json`, the inode of the namespace the
 * commands run in (`readlink /proc/self/ns/net` through the runner) — so that proxies (and tests) in
 * different namespaces never remove each other's addresses.
 */

export const DEFAULT_STATE_DIR = '/run/kube-userspace-proxy';

export interface AddressState {
  readonly interface: string;
  /** Normalised IPs (parseIP form). */
  readonly addresses: readonly string[];
}

/** The inode number of the network namespace commands run in, e.g. `4026532177`. */
export async function netnsId(runner: CommandRunner): Promise<string> {
  const readlink = await requireSystemBinary('readlink');
  const result = await runChecked(runner, [readlink, '/proc/self/ns/net'], undefined, 'readlink /proc/self/ns/net');
  const match = /net:\[(\d+)\]/.exec(result.stdout);
  if (!match) throw new RulesError(`cannot tell the network namespace from ${JSON.stringify(result.stdout.trim())}`);
  return match[1]!;
}

export function stateFile(stateDir: string, id: string): string {
  return `${stateDir}/assigned-${id}.json`;
}

/** The recorded state, or undefined when there is no (readable, well-formed) file. */
export async function readAddressState(file: string): Promise<AddressState | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const data = JSON.parse(text) as { interface?: unknown; addresses?: unknown };
    if (typeof data.interface !== 'string' || !Array.isArray(data.addresses)) return undefined;
    const addresses = data.addresses.filter((a): a is string => typeof a === 'string' && parseIP(a) !== undefined);
    return { interface: data.interface, addresses };
  } catch {
    return undefined;
  }
}

/** Writes atomically (temporary file, then rename), so that a crash never leaves half a file. */
export async function writeAddressState(file: string, state: AddressState): Promise<void> {
  await mkdir(file.slice(0, file.lastIndexOf('/')), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ interface: state.interface, addresses: [...state.addresses].sort() }, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, file);
}

export async function removeAddressState(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** `ADDR/32` or `ADDR/128`. */
export function hostPrefix(ip: string): string {
  return ip.includes(':') ? `${ip}/128` : `${ip}/32`;
}

/**
 * Runs `ip -force -batch -` (one process for any number of changes) and returns the lines that failed.
 * `-force` goes on after a failed line; `ip` then reports `Command failed -:N` for each.
 */
export async function ipBatch(runner: CommandRunner, lines: readonly string[]): Promise<{ failed: { line: string; error: string }[] }> {
  if (lines.length === 0) return { failed: [] };
  const ip = await requireSystemBinary('ip');
  const result = await runner([ip, '-force', '-batch', '-'], `${lines.join('\n')}\n`);
  if (result.code === 0) return { failed: [] };
  const failed: { line: string; error: string }[] = [];
  const errors = result.stderr.split('\n');
  errors.forEach((text, i) => {
    const match = /Command failed -:(\d+)/.exec(text);
    if (match) failed.push({ line: lines[Number(match[1]) - 1] ?? '', error: (errors[i - 1] ?? '').trim() });
  });
  if (failed.length === 0) failed.push({ line: '(batch)', error: result.stderr.trim() || `exit ${result.code}` });
  return { failed };
}

/** A `del` that failed because the address was not there: the outcome we wanted anyway. */
export function isMissingAddress(error: string): boolean {
  return /Address not found|Cannot assign requested address|No such device|Cannot find device/.test(error);
}

/**
 * Removes the addresses recorded for this namespace and the record itself. Returns what was removed,
 * e.g. `address 10.96.0.1/32 dev lo`. Missing addresses (and a missing interface) are not errors.
 */
export async function removeRecordedAddresses(runner: CommandRunner, stateDir: string): Promise<string[]> {
  const file = stateFile(stateDir, await netnsId(runner));
  const state = await readAddressState(file);
  if (!state) {
    await removeAddressState(file);
    return [];
  }
  const lines = state.addresses.map((a) => `address del ${hostPrefix(a)} dev ${state.interface}`);
  const { failed } = await ipBatch(runner, lines);
  const real = failed.filter((f) => !isMissingAddress(f.error));
  if (real.length) {
    throw new RulesError(`could not remove service addresses: ${real.map((f) => `${f.line}: ${f.error}`).join('; ')}`);
  }
  await removeAddressState(file);
  const gone = new Set(failed.map((f) => f.line));
  return lines.filter((l) => !gone.has(l)).map((l) => l.replace(/^address del /, 'address '));
}
