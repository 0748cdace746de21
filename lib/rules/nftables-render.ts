import type { IPFamily } from '../model/ip-address.js';
import { NFT_FAMILY, NFT_TABLE } from './nftables-table.js';
import type { FamilyPlan, PlannedNodePort, PlannedPortal, PlannedReject, RulePlan, Target } from './rule-plan.js';

/**
 * Renders the whole `inet kube-userspace-proxy` table as one `nft -f -` transaction:
 *
 *   add table …; delete table …; table … { maps, sets, chains }
 *
 * Adding before deleting makes the delete succeed whether or not the table exists; the kernel applies
 * the whole batch atomically, so packets see either the old table or the new one, never none, and
 * established connections keep their conntrack NAT. Rewriting everything each sync leaves nothing stale
 * and costs about 160 ms for 10,000 service ports.
 *
 * Per-service data lives in maps keyed by `daddr . l4proto . dport` (or `l4proto . dport` for node
 * ports) whose value is the proxy port, so the number of RULES is fixed (at most 6 per family) however
 * many services there are. Traffic from pods and other hosts is REDIRECTed (proxy on the any-address)
 * or DNATed to the bind address, as in the iptables backend (see the notes on `target` in
 * iptables-render.ts); only the port comes from the map.
 *
 * Ports without endpoints are refused by a filter chain on the input hook (set `no-endpoints`).
 *
 * Three deliberate differences from the iptables chains:
 * - The node's own traffic is DNATed to its own source address rather than to a fixed host IP (see
 *   hostTarget), so RuleContext.hostIPv4/hostIPv6 are not used here.
 * - External IPs are captured for all arriving traffic. iptables tells bridged pod traffic apart with
 *   `-m physdev ! --physdev-is-in`, which has no equivalent in an inet table; kube-proxy's own nftables
 *   mode captures pod traffic to external IPs as well.
 * - No KUBE-NODEPORT-NON-LOCAL accept: an accept in our table does not stop another table's base chain
 *   from dropping the packet, so the rule would only mislead.
 */
export function renderNftables(plan: RulePlan, families: readonly IPFamily[]): string {
  const body: string[] = [];
  const maps: string[][] = [];
  const chains = { prerouting: [] as string[], output: [] as string[] };
  for (const family of families) {
    const f = plan[family];
    const v = suffix(family);
    const keyType = `${family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr'} . inet_proto . inet_service`;
    maps.push(mapBlock(`portals-${v}`, keyType, f.portals.filter((p) => p.kind !== 'externalIP').map(portalElement)));
    maps.push(mapBlock(`externals-${v}`, keyType, f.portals.filter((p) => p.kind === 'externalIP').map(portalElement)));
    if (f.nodePortIPs !== undefined) {
      maps.push(setBlock(`nodeport-ips-${v}`, family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr', f.nodePortIPs));
    }
    // Per family: each family's node port of a dual-stack service goes to that family's listener.
    maps.push(mapBlock(`nodeports-${v}`, 'inet_proto . inet_service', f.nodePorts.map(nodePortElement)));
    chains.prerouting.push(...familyRules(f, 'container'));
    chains.output.push(...familyRules(f, 'host'));
  }
  maps.push(setBlock('no-endpoints', 'inet_proto . inet_service', plan.IPv4.rejects.map(rejectElement)));

  body.push(...maps.flatMap((m) => [...m, '']));
  body.push('\tchain prerouting {', '\t\ttype nat hook prerouting priority dstnat; policy accept;', ...chains.prerouting.map((r) => `\t\t${r}`), '\t}', '');
  // Locally generated packets meet the nat table in OUTPUT, at the same priority as dstnat.
  body.push('\tchain output {', '\t\ttype nat hook output priority -100; policy accept;', ...chains.output.map((r) => `\t\t${r}`), '\t}', '');
  // After the redirect every portal's packet is addressed to its listener's port on this node, so
  // one input rule per protocol refuses the ports without endpoints, whatever way the packet came
  // (see the no-endpoints notes in iptables-render.ts). Only new flows: established ones finish.
  body.push(
    '\tchain no-endpoints {',
    '\t\ttype filter hook input priority filter; policy accept;',
    '\t\tct state new meta l4proto tcp meta l4proto . th dport @no-endpoints reject with tcp reset comment "TCP service ports without endpoints"',
    '\t\tct state new meta l4proto udp meta l4proto . th dport @no-endpoints reject comment "UDP service ports without endpoints"',
    '\t}',
  );
  return [`add table ${NFT_FAMILY} ${NFT_TABLE}`, `delete table ${NFT_FAMILY} ${NFT_TABLE}`, `table ${NFT_FAMILY} ${NFT_TABLE} {`, ...body, '}', ''].join('\n');
}

/**
 * One family's rules for one hook: portals (ClusterIPs and LB IPs), external IPs, node ports — in that
 * order, because LB IPs can be local addresses and must not be taken for node ports (see JUMPS).
 * `meta l4proto { tcp, udp }` is the protocol match nft requires before `th dport`.
 */
function familyRules(plan: FamilyPlan, from: 'container' | 'host'): string[] {
  const to = from === 'container' ? plan.container : hostTarget(plan);
  if (!to) return [];
  const v = suffix(plan.family);
  const ip = plan.family === 'IPv4' ? 'ip' : 'ip6';
  const nfproto = plan.family === 'IPv4' ? 'ipv4' : 'ipv6';
  const stmt = (key: string): string => `meta l4proto { tcp, udp } ${target(to, ip, key)}`;
  const where = from === 'container' ? 'from pods and other hosts' : 'from this node';
  const rules = [
    `${stmt(`${ip} daddr . meta l4proto . th dport map @portals-${v}`)} comment "${plan.family} ClusterIPs and LoadBalancer IPs ${where}"`,
    // Like the legacy KUBE-PORTALS-HOST rule: the node's own traffic to an external IP is captured only when that IP is local.
    `${from === 'host' ? `meta nfproto ${nfproto} fib daddr type local ` : ''}${stmt(`${ip} daddr . meta l4proto . th dport map @externals-${v}`)}` + ` comment "${plan.family} external IPs ${where}"`,
  ];
  if (plan.nodePortIPs === undefined) {
    rules.push(`meta nfproto ${nfproto} fib daddr type local ${stmt(`meta l4proto . th dport map @nodeports-${v}`)} comment "${plan.family} NodePorts ${where}"`);
  } else if (plan.nodePortIPs.length > 0) {
    rules.push(`${ip} daddr @nodeport-ips-${v} ${stmt(`meta l4proto . th dport map @nodeports-${v}`)} comment "${plan.family} NodePorts ${where}"`);
  }
  return rules;
}

/**
 * Where the node's own traffic goes. With a specific bind address, DNAT to it (the only address the
 * listener has). With the any-address, DNAT to the packet's own source address (`ip saddr`), which nft
 * can do and iptables cannot: a locally generated packet's source is always a local address, and it is
 * the address the proxy's reply will be sent from, so conntrack un-NATs UDP replies correctly. The
 * iptables backend must DNAT to a fixed host IP instead, and a UDP reply only comes back from the portal
 * if that host IP is the source address of the route to the portal (see routeSourceAddress).
 */
type HostTarget = Target | { readonly kind: 'source' };

function hostTarget(plan: FamilyPlan): HostTarget | undefined {
  if (plan.container?.kind === 'redirect') return { kind: 'source' };
  return plan.host;
}

function target(to: HostTarget, ip: 'ip' | 'ip6', key: string): string {
  if (to.kind === 'redirect') return `redirect to : ${key}`;
  if (to.kind === 'source') return `dnat ${ip} to ${ip} saddr : ${key}`;
  return `dnat ${ip} to ${ip === 'ip6' ? `[${to.ip}]` : to.ip} : ${key}`;
}

function portalElement(p: PlannedPortal): string {
  return `${p.ip} . ${p.protocol} . ${p.port} comment ${elementComment(p.spn)} : ${p.proxyPort}`;
}

function nodePortElement(n: PlannedNodePort): string {
  return `${n.protocol} . ${n.nodePort} comment ${elementComment(n.spn)} : ${n.proxyPort}`;
}

function rejectElement(r: PlannedReject): string {
  return `${r.protocol} . ${r.proxyPort} comment ${elementComment(r.spn)}`;
}

function mapBlock(name: string, keyType: string, elements: readonly string[]): string[] {
  return [`\tmap ${name} {`, `\t\ttype ${keyType} : inet_service`, ...elementLines(elements), '\t}'];
}

function setBlock(name: string, type: string, elements: readonly string[]): string[] {
  return [`\tset ${name} {`, `\t\ttype ${type}`, ...elementLines(elements), '\t}'];
}

function elementLines(elements: readonly string[]): string[] {
  if (elements.length === 0) return [];
  return ['\t\telements = {', ...elements.map((e, i) => `\t\t\t${e}${i < elements.length - 1 ? ',' : ''}`), '\t\t}'];
}

/** nft limits comments to 128 characters; the filter keeps a malformed name from breaking the syntax. */
function elementComment(text: string): string {
  return `"${text.replace(/[^A-Za-z0-9._:/-]/g, '_').slice(0, 128)}"`;
}

function suffix(family: IPFamily): 'v4' | 'v6' {
  return family === 'IPv4' ? 'v4' : 'v6';
}
