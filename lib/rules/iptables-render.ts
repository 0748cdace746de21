import type { IPFamily } from '../model/ip-address.js';
import { NO_ENDPOINTS, NODEPORT_CONTAINER, NODEPORT_HOST, NODEPORT_NON_LOCAL, OUR_CHAINS, PORTALS_CONTAINER, PORTALS_HOST } from './iptables-chains.js';
import type { FamilyPlan, PlannedNodePort, PlannedPortal, Target } from './rule-plan.js';
import { hostPort } from './rule-plan.js';

/**
 * Renders one family's rules as `iptables-restore --noflush` input. Every rule is written exactly as
 * iptables-save prints it back (`-d` and `-p` first, then the matches in order), so the rendered lines
 * can be compared with, and deleted by, what the kernel reports.
 */

/** Our rules of one family: the `-A CHAIN spec` lines of each table, in chain order. */
export interface IptablesRuleSet {
  readonly nat: readonly string[];
  readonly filter: readonly string[];
}

/** Jump repair lines (see jumpRepairs) per table, placed before our rules. */
export interface JumpLines {
  readonly nat: readonly string[];
  readonly filter: readonly string[];
}

/** The full rewrite of one family (see renderFull). */
export function renderIptablesFamily(plan: FamilyPlan, jumps: JumpLines): string {
  return renderFull(iptablesRuleSet(plan), jumps);
}

/**
 * The full rewrite: declaring `:CHAIN - [0:0]` for a chain that exists flushes it inside the
 * transaction, so writing our chains in full leaves nothing stale, whatever happened to them; the jumps
 * from the built-in chains are the only rules outside our chains, and `jumps` keeps those exactly once.
 */
export function renderFull(rules: IptablesRuleSet, jumps: JumpLines): string {
  const table = (name: 'nat' | 'filter'): string[] => [`*${name}`, ...OUR_CHAINS[name].map((c) => `:${c} - [0:0]`), ...jumps[name], ...rules[name], 'COMMIT'];
  return `${[...table('nat'), ...table('filter')].join('\n')}\n`;
}

/**
 * The delta from `before` (what the last sync installed) to `after`: `-D` for each rule that went, `-A`
 * for each that came, no chain declarations. Undefined when there is nothing to do. Order within our
 * chains does not matter — no two of our rules match the same packet with different targets (portals
 * and node ports are deduplicated by planRules) — so appending is as good as rewriting. A `-D` that finds
 * nothing (someone edited our chains) fails the transaction, and the caller falls back to renderFull.
 */
export function renderDelta(before: IptablesRuleSet, after: IptablesRuleSet, jumps: JumpLines): string | undefined {
  const lines: string[] = [];
  for (const name of ['nat', 'filter'] as const) {
    const gone = difference(before[name], after[name]).map((l) => `-D${l.slice(2)}`);
    const come = difference(after[name], before[name]);
    if (jumps[name].length + gone.length + come.length > 0) lines.push(`*${name}`, ...jumps[name], ...gone, ...come, 'COMMIT');
  }
  return lines.length ? `${lines.join('\n')}\n` : undefined;
}

/** Our rules for one family's plan. */
export function iptablesRuleSet(plan: FamilyPlan): IptablesRuleSet {
  const chains = new Map<string, string[]>([...OUR_CHAINS.nat, ...OUR_CHAINS.filter].map((c) => [c, []]));
  const add = (chain: string, spec: string): void => void chains.get(chain)!.push(`-A ${chain} ${spec}`);
  for (const portal of plan.portals) {
    const match = portalMatch(portal, plan.family);
    if (plan.container) {
      const to = target(plan.container, portal.proxyPort);
      if (portal.kind === 'externalIP') {
        // An external IP is captured when the packet did not come from a local container over a bridge
        // (`! --physdev-is-in`: it came from outside), or when the IP is one of the node's own; pods
        // talking to an external IP that lives elsewhere go there unproxied (legacy behaviour).
        add(PORTALS_CONTAINER, `${match} -m physdev ! --physdev-is-in ${to}`);
        add(PORTALS_CONTAINER, `${match} -m addrtype --dst-type LOCAL ${to}`);
      } else {
        add(PORTALS_CONTAINER, `${match} ${to}`);
      }
    }
    if (plan.host) {
      const to = target(plan.host, portal.proxyPort);
      add(PORTALS_HOST, portal.kind === 'externalIP' ? `${match} -m addrtype --dst-type LOCAL ${to}` : `${match} ${to}`);
    }
  }

  const refused = new Set(plan.rejects.map((r) => `${r.protocol} ${r.proxyPort}`));
  const nodeIPs: readonly (string | undefined)[] = plan.nodePortIPs ?? [undefined];
  for (const nodePort of nodeIPs.length > 0 ? plan.nodePorts : []) {
    for (const ip of nodeIPs) {
      const match = nodePortMatch(nodePort, ip, plan.family);
      if (plan.container) add(NODEPORT_CONTAINER, `${match} ${target(plan.container, nodePort.proxyPort)}`);
      if (plan.host) add(NODEPORT_HOST, `${match} ${target(plan.host, nodePort.proxyPort)}`);
    }
    // Traffic from other hosts, once redirected, arrives at the proxy port: let it past a filter INPUT
    // chain whose policy drops (legacy matches the proxy port here, not the node port). Not for a port
    // without endpoints, which the no-endpoints chain refuses instead (so the two never overlap).
    if (plan.container && !refused.has(`${nodePort.protocol} ${nodePort.proxyPort}`)) {
      const { protocol, spn, proxyPort } = nodePort;
      add(NODEPORT_NON_LOCAL, `-p ${protocol} -m comment --comment ${comment(spn)} -m ${protocol} --dport ${proxyPort} -m state --state NEW -j ACCEPT`);
    }
  }

  // No endpoints: kube-proxy rejects in the filter table (KUBE-SERVICES, KUBE-EXTERNAL-SERVICES)
  // before any DNAT. Here the portal, node port and external IP rules keep redirecting to the
  // listener, and the refusal is made where all of those arrive after the redirect: filter INPUT,
  // at the listener's port (the node's own traffic, DNATed in OUTPUT, also comes in through INPUT).
  // The kernel's reply goes through conntrack's NAT, so the client sees it come from the portal.
  // TCP gets a reset, as from a closed port (kube-proxy sends an ICMP port unreachable, which a TCP
  // client reports as "connection refused" too); UDP gets an ICMP port unreachable.
  if (plan.container || plan.host) {
    for (const r of plan.rejects) {
      const how = r.protocol === 'tcp' ? 'tcp-reset' : plan.family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
      add(NO_ENDPOINTS, `-p ${r.protocol} -m comment --comment ${comment(r.spn)} -m ${r.protocol} --dport ${r.proxyPort} -j REJECT --reject-with ${how}`);
    }
  }

  return { nat: OUR_CHAINS.nat.flatMap((c) => chains.get(c)!), filter: OUR_CHAINS.filter.flatMap((c) => chains.get(c)!) };
}

/** The lines of `a` not in `b` (lines are unique: each names its service port and its own match). */
function difference(a: readonly string[], b: readonly string[]): string[] {
  const set = new Set(b);
  return a.filter((l) => !set.has(l));
}

function portalMatch(portal: PlannedPortal, family: IPFamily): string {
  const mask = family === 'IPv4' ? 32 : 128;
  return `-d ${portal.ip}/${mask} -p ${portal.protocol} -m comment --comment ${comment(portal.spn)} -m ${portal.protocol} --dport ${portal.port}`;
}

function nodePortMatch(nodePort: PlannedNodePort, ip: string | undefined, family: IPFamily): string {
  const dst = ip === undefined ? '' : `-d ${ip}/${family === 'IPv4' ? 32 : 128} `;
  return `${dst}-p ${nodePort.protocol} -m comment --comment ${comment(nodePort.spn)} -m ${nodePort.protocol} --dport ${nodePort.nodePort}`;
}

/**
 * REDIRECT or DNAT. Why the difference (the legacy proxier's hard-won notes, still true):
 *
 * - Traffic from pods, proxy bound to the any-address: REDIRECT, which rewrites the destination to the
 *   primary address of the interface the packet came in on (the container bridge). The reply leaves
 *   from that same address, so conntrack un-NATs it correctly — this matters for UDP, where the client
 *   (DNS) checks the reply's source. DNAT to 127.0.0.1 does not work (the kernel drops packets routed
 *   from outside to loopback), and DNAT to eth0's IP gets replies sent from the bridge, which breaks
 *   the NAT.
 * - Proxy bound to a specific IP: DNAT to that IP, the only address the listener has.
 * - Traffic the node originates (the HOST chains): always DNAT to a non-loopback host IP. REDIRECT of
 *   locally generated packets goes to 127.0.0.1 and the replies come from the eth0 IP, which DNS rejects.
 */
function target(to: Target, proxyPort: number): string {
  return to.kind === 'redirect' ? `-j REDIRECT --to-ports ${proxyPort}` : `-j DNAT --to-destination ${hostPort(to.ip, proxyPort)}`;
}

/**
 * The `--comment` argument, quoted as iptables-save prints it. Service port names are DNS labels and
 * IANA service names, so the character filter never changes a valid one; it only keeps a malformed one
 * from breaking the restore syntax.
 */
export function comment(text: string): string {
  return `"${text.replace(/[^A-Za-z0-9._:/-]/g, '_').slice(0, 256)}"`;
}
