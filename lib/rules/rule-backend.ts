import type { IPFamily } from '../model/ip-address.js';
import type { ServicePortName } from '../model/service-port-name.js';

/**
 * The packet rules that send each Service portal to its local proxy port. Two implementations:
 * `IptablesRules` (the legacy kube-proxy chains, applied with one iptables-restore per family) and
 * `NftablesRules` (one nftables table whose rule count does not grow with the number of Services).
 */

export type PortalKind = 'clusterIP' | 'externalIP' | 'loadBalancerIP';

export interface Portal {
  readonly ip: string;
  readonly port: number;
  readonly kind: PortalKind;
}

/** One service port's rules: every portal and node port of it, redirected to its local proxy port. */
export interface ServicePortRules {
  readonly spn: ServicePortName;
  readonly protocol: 'TCP' | 'UDP';
  /** IPv4 and IPv6 mixed; each goes to the matching family's table. */
  readonly portals: readonly Portal[];
  /** 0: none. */
  readonly nodePort: number;
  /** The listener's port (same number for IPv4 and IPv6 listeners). */
  readonly proxyPort: number;
  /**
   * The one family this listener serves, for a dual-stack service port (a listener per family): its
   * node port is redirected in that family's table only. Undefined: both families.
   */
  readonly family?: IPFamily;
  /**
   * The port has no usable endpoint: new connections to it are refused in the kernel (TCP reset,
   * ICMP port unreachable for UDP), as kube-proxy's REJECT rules do, instead of reaching the listener.
   */
  readonly noEndpoints?: boolean;
}

export interface RuleContext {
  /** --bind-address: any-address (0.0.0.0 / ::) → REDIRECT for pod traffic; a specific IP → DNAT to it. */
  readonly bindAddress: string;
  /**
   * Host IPs that node-originated traffic is DNATed to (legacy: the bind IP, or the primary interface's IP).
   * Used by iptables with an any-address bind; for UDP replies to reach the client they must be the source
   * address of the route to the portals (routeSourceAddress). nftables DNATs to each packet's own source.
   */
  readonly hostIPv4: string | undefined;
  readonly hostIPv6: string | undefined;
  /** undefined: NodePorts on every local address (addrtype LOCAL); else only these node IPs (--nodeport-addresses). */
  readonly nodePortIPs: readonly string[] | undefined;
}

export interface RuleBackend {
  readonly mode: 'iptables' | 'nftables';
  /** Checks the tools and privileges, removes leftovers of earlier runs, installs the base chains/table. Throws RulesError. */
  start(): Promise<void>;
  /** Makes the installed rules exactly `rules` in one atomic transaction per family. Throws RulesError (installed rules then stay as they were). */
  sync(rules: readonly ServicePortRules[], context: RuleContext): Promise<void>;
  /** The exact text sync() would apply (iptables-restore or nft syntax), for --dry-run; no side effects. */
  render(rules: readonly ServicePortRules[], context: RuleContext): string;
  /** Removes every rule, chain and table of the project. Idempotent. */
  close(): Promise<void>;
}

/** A context for rule sets with no service ports (base chains and tables only). */
export const EMPTY_RULE_CONTEXT: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: undefined, hostIPv6: undefined, nodePortIPs: undefined };
