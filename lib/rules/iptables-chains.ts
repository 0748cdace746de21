import type { SavedRule } from './iptables-save-parser.js';

/**
 * The legacy kube-proxy userspace chains, kept by name and by jump so that a node moving from the old
 * proxy to this one (or back) finds the rules where it expects them, and so that one cleanup removes both.
 */

export const PORTALS_CONTAINER = 'KUBE-PORTALS-CONTAINER';
export const PORTALS_HOST = 'KUBE-PORTALS-HOST';
export const NODEPORT_CONTAINER = 'KUBE-NODEPORT-CONTAINER';
export const NODEPORT_HOST = 'KUBE-NODEPORT-HOST';
export const NODEPORT_NON_LOCAL = 'KUBE-NODEPORT-NON-LOCAL';
/** Not a legacy chain: refuses new connections to the listeners of service ports without endpoints. */
export const NO_ENDPOINTS = 'KUBE-USERSPACE-NO-ENDPOINTS';

export type IptablesTable = 'nat' | 'filter';

/** Our chains by table, in the order they are declared in a restore transaction. */
export const OUR_CHAINS: Readonly<Record<IptablesTable, readonly string[]>> = {
  nat: [PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST],
  filter: [NODEPORT_NON_LOCAL, NO_ENDPOINTS],
};

export const ALL_OUR_CHAINS: readonly string[] = [...OUR_CHAINS.nat, ...OUR_CHAINS.filter];

/** A jump from a built-in chain to one of ours. */
export interface Jump {
  readonly table: IptablesTable;
  readonly from: 'PREROUTING' | 'OUTPUT' | 'INPUT';
  readonly to: string;
  /** `first`: inserted at position 1; `last`: appended. */
  readonly position: 'first' | 'last';
  /** The rule spec exactly as iptables-save prints it (so `-D` can match it). */
  readonly spec: string;
}

const PORTALS_COMMENT = '"handle ClusterIPs; NOTE: this must be before the NodePort rules"';
const NODEPORTS_COMMENT = '"handle service NodePorts; NOTE: this must be the last rule in the chain"';
const NON_LOCAL_COMMENT = '"Ensure that non-local NodePort traffic can flow"';
const NO_ENDPOINTS_COMMENT = '"refuse service ports without endpoints"';

/**
 * The five jumps the legacy proxier installed, and the jump to the no-endpoints chain. Order matters: the portal jumps go first in
 * PREROUTING/OUTPUT and the NodePort jumps last, because on some clouds (GCE) LoadBalancer IPs are
 * local addresses, so a NodePort rule (`--dst-type LOCAL --dport N`) would otherwise catch traffic for
 * an LB IP whose service port happens to equal some node port.
 */
export const JUMPS: readonly Jump[] = [
  { table: 'nat', from: 'PREROUTING', to: PORTALS_CONTAINER, position: 'first', spec: `-m comment --comment ${PORTALS_COMMENT} -j ${PORTALS_CONTAINER}` },
  { table: 'nat', from: 'OUTPUT', to: PORTALS_HOST, position: 'first', spec: `-m comment --comment ${PORTALS_COMMENT} -j ${PORTALS_HOST}` },
  {
    table: 'nat',
    from: 'PREROUTING',
    to: NODEPORT_CONTAINER,
    position: 'last',
    spec: `-m addrtype --dst-type LOCAL -m comment --comment ${NODEPORTS_COMMENT} -j ${NODEPORT_CONTAINER}`,
  },
  {
    table: 'nat',
    from: 'OUTPUT',
    to: NODEPORT_HOST,
    position: 'last',
    spec: `-m addrtype --dst-type LOCAL -m comment --comment ${NODEPORTS_COMMENT} -j ${NODEPORT_HOST}`,
  },
  { table: 'filter', from: 'INPUT', to: NODEPORT_NON_LOCAL, position: 'first', spec: `-m comment --comment ${NON_LOCAL_COMMENT} -j ${NODEPORT_NON_LOCAL}` },
  // New flows only, as kube-proxy's KUBE-SERVICES filter jumps: established connections finish.
  { table: 'filter', from: 'INPUT', to: NO_ENDPOINTS, position: 'first', spec: `-m conntrack --ctstate NEW -m comment --comment ${NO_ENDPOINTS_COMMENT} -j ${NO_ENDPOINTS}` },
];

/** The built-in chains our jumps live in, per table. */
export const JUMP_SOURCES: readonly { readonly table: IptablesTable; readonly chain: 'PREROUTING' | 'OUTPUT' | 'INPUT' }[] = [
  { table: 'nat', chain: 'PREROUTING' },
  { table: 'nat', chain: 'OUTPUT' },
  { table: 'filter', chain: 'INPUT' },
];

/**
 * The restore lines that make `existing` (the current rules of one built-in chain) hold each of our
 * jumps exactly once, in the right order: `-D` for duplicates, for jumps to our chains with any other
 * spec (an older version's comment, say) and for a portal jump found after a NodePort jump; then `-I 1`
 * or `-A` for what is missing. Empty when the chain is already right, which is the usual case.
 */
export function jumpRepairs(chain: 'PREROUTING' | 'OUTPUT' | 'INPUT', existing: readonly SavedRule[]): string[] {
  const wanted = JUMPS.filter((j) => j.from === chain);
  const deletes: string[] = [];
  const kept = new Map<string, number>();
  existing.forEach((rule, index) => {
    const jump = wanted.find((j) => rule.spec === j.spec);
    const toOurs = wanted.some((j) => new RegExp(`(?:^|\\s)-[jg]\\s+${j.to}(?:\\s|$)`).test(rule.spec));
    if (jump && !kept.has(jump.to)) kept.set(jump.to, index);
    else if (toOurs) deletes.push(`-D ${chain} ${rule.spec}`);
  });
  // A portal jump behind a NodePort jump is as good as missing: take it out and put it back in front.
  const firstLast = Math.min(...wanted.filter((j) => j.position === 'last').map((j) => kept.get(j.to) ?? Infinity));
  for (const jump of wanted.filter((j) => j.position === 'first')) {
    const at = kept.get(jump.to);
    if (at !== undefined && at > firstLast) {
      deletes.push(`-D ${chain} ${jump.spec}`);
      kept.delete(jump.to);
    }
  }
  const adds = wanted.filter((j) => !kept.has(j.to)).map((j) => (j.position === 'first' ? `-I ${chain} 1 ${j.spec}` : `-A ${chain} ${j.spec}`));
  return [...deletes, ...adds];
}
