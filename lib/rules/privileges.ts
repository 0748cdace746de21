import { readFileSync } from 'node:fs';
import { RulesError } from '../errors.js';

/** Seams for the privilege check, so that tests can pretend to be an unprivileged user. */
export interface PrivilegeProbe {
  /** Default: process.getuid. */
  readonly getuid?: () => number;
  /** The effective capability mask (CapEff of /proc/self/status); undefined when unknown. */
  readonly effectiveCapabilities?: () => bigint | undefined;
}

const CAP_NET_ADMIN = 12n;

/**
 * Throws a one-line RulesError unless the process is root or holds CAP_NET_ADMIN. Everything in
 * lib/rules changes the network stack, and without the privilege the first iptables-restore would fail
 * with a far less helpful message (`Permission denied (you must be root)`), possibly half-way through.
 */
export function requireNetAdmin(what: string, alternative: string, probe: PrivilegeProbe = {}): void {
  const uid = (probe.getuid ?? defaultGetuid)();
  if (uid === 0) return;
  const caps = (probe.effectiveCapabilities ?? readEffectiveCapabilities)();
  if (caps !== undefined && (caps >> CAP_NET_ADMIN) & 1n) return;
  throw new RulesError(`${what} needs root (CAP_NET_ADMIN); run as root or ${alternative}`);
}

function defaultGetuid(): number {
  return process.getuid?.() ?? -1;
}

function readEffectiveCapabilities(): bigint | undefined {
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? BigInt(`0x${match[1]}`) : undefined;
  } catch {
    return undefined;
  }
}
