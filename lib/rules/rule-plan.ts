import { RulesError } from '../errors.js';
import type { IPFamily } from '../model/ip-address.js';
import { parseIP } from '../model/ip-address.js';
import type { ServicePortName } from '../model/service-port-name.js';
import type { PortalKind, RuleContext, ServicePortRules } from './rule-backend.js';

/**
 * The rules of one sync, validated, normalised, deduplicated, sorted and split by IP family: the common
 * input of the iptables and nftables renderers, and of the UDP conntrack cleanup. Sorting by service
 * port name makes the rendered text depend only on the set of rules, not on the order they came in.
 */

/** A service port's protocol as iptables (`-p tcp`) and nftables (`tcp dport`) spell it; Kubernetes' own is model's `Protocol`. */
export type RuleProtocol = 'tcp' | 'udp';

export interface PlannedPortal {
  readonly spn: ServicePortName;
  readonly protocol: RuleProtocol;
  /** Normalised: dotted quad, or RFC 5952 IPv6 (the form iptables-save and nft print). */
  readonly ip: string;
  readonly port: number;
  readonly kind: PortalKind;
  readonly proxyPort: number;
}

export interface PlannedNodePort {
  readonly spn: ServicePortName;
  readonly protocol: RuleProtocol;
  readonly nodePort: number;
  readonly proxyPort: number;
}

/** A listener whose port has no endpoint: new connections redirected to it are refused. */
export interface PlannedReject {
  readonly spn: ServicePortName;
  readonly protocol: RuleProtocol;
  readonly proxyPort: number;
}

/** Where captured traffic goes: REDIRECT (the primary address of the incoming interface) or DNAT to an IP, at the proxy port. */
export type Target = { readonly kind: 'redirect' } | { readonly kind: 'dnat'; readonly ip: string };

export interface FamilyPlan {
  readonly family: IPFamily;
  readonly portals: readonly PlannedPortal[];
  readonly nodePorts: readonly PlannedNodePort[];
  /** Listeners to refuse new connections for, after the redirect (the same in both families). */
  readonly rejects: readonly PlannedReject[];
  /** This family's --nodeport-addresses IPs; undefined: every local address. */
  readonly nodePortIPs: readonly string[] | undefined;
  /** For traffic arriving from elsewhere (pods, other hosts); undefined: no listener of this family, so no rules. */
  readonly container: Target | undefined;
  /** For traffic the node itself originates; always DNAT; undefined: no host IP of this family, so no rules. */
  readonly host: (Target & { kind: 'dnat' }) | undefined;
}

export interface RulePlan {
  readonly IPv4: FamilyPlan;
  readonly IPv6: FamilyPlan;
  /** Rules left out (duplicates of an earlier portal or node port), for a warning. */
  readonly dropped: readonly { readonly spn: ServicePortName; readonly reason: string }[];
}

export const FAMILIES: readonly IPFamily[] = ['IPv4', 'IPv6'];

const KIND_ORDER: Record<PortalKind, number> = { clusterIP: 0, externalIP: 1, loadBalancerIP: 2 };

/** Validates and plans; throws RulesError on malformed input (the caller's bug, not the kernel's). */
export function planRules(rules: readonly ServicePortRules[], context: RuleContext): RulePlan {
  const bind = parseIP(context.bindAddress);
  if (!bind) throw new RulesError(`invalid bind address ${JSON.stringify(context.bindAddress)}`);
  if (bind.address === '127.0.0.1' || bind.address === '::1') {
    throw new RulesError(`cannot redirect to a proxy bound to localhost (${bind.address}): the kernel drops packets DNATed to loopback`);
  }
  const bindIsAny = bind.address === '0.0.0.0' || bind.address === '::';
  const hostIPs: Record<IPFamily, string | undefined> = {
    IPv4: familyIP(context.hostIPv4, 'IPv4', 'hostIPv4'),
    IPv6: familyIP(context.hostIPv6, 'IPv6', 'hostIPv6'),
  };
  const nodePortIPs: Record<IPFamily, string[]> = { IPv4: [], IPv6: [] };
  for (const text of context.nodePortIPs ?? []) {
    const ip = parseIP(text);
    if (!ip) throw new RulesError(`invalid node port address ${JSON.stringify(text)}`);
    if (!nodePortIPs[ip.family].includes(ip.address)) nodePortIPs[ip.family].push(ip.address);
  }

  const sorted = [...rules].sort((a, b) => compare(a.spn, b.spn) || compare(a.protocol, b.protocol));
  const portals: Record<IPFamily, PlannedPortal[]> = { IPv4: [], IPv6: [] };
  const nodePorts: Record<IPFamily, PlannedNodePort[]> = { IPv4: [], IPv6: [] };
  const rejects: PlannedReject[] = [];
  const seenRejects = new Set<string>();
  const dropped: { spn: ServicePortName; reason: string }[] = [];
  const seenPortals = new Set<string>();
  const seenNodePorts = new Set<string>();
  for (const rule of sorted) {
    if (rule.protocol !== 'TCP' && rule.protocol !== 'UDP') {
      throw new RulesError(`${rule.spn}: unsupported protocol ${JSON.stringify(rule.protocol)}`);
    }
    const protocol: RuleProtocol = rule.protocol === 'TCP' ? 'tcp' : 'udp';
    checkPort(rule.proxyPort, `${rule.spn}: proxy port`);
    if (rule.nodePort !== 0) checkPort(rule.nodePort, `${rule.spn}: node port`);
    const ordered = rule.portals.map((p, i) => ({ p, i })).sort((a, b) => KIND_ORDER[a.p.kind] - KIND_ORDER[b.p.kind] || a.i - b.i);
    for (const { p } of ordered) {
      const ip = parseIP(p.ip);
      if (!ip) throw new RulesError(`${rule.spn}: invalid ${p.kind} ${JSON.stringify(p.ip)}`);
      checkPort(p.port, `${rule.spn}: port`);
      if (!(p.kind in KIND_ORDER)) throw new RulesError(`${rule.spn}: unknown portal kind ${JSON.stringify(p.kind)}`);
      const key = `${protocol} ${ip.address} ${p.port}`;
      if (seenPortals.has(key)) {
        dropped.push({ spn: rule.spn, reason: `portal ${protocol} ${ip.address} port ${p.port} already taken` });
        continue;
      }
      seenPortals.add(key);
      portals[ip.family].push({ spn: rule.spn, protocol, ip: ip.address, port: p.port, kind: p.kind, proxyPort: rule.proxyPort });
    }
    if (rule.family !== undefined && !FAMILIES.includes(rule.family)) throw new RulesError(`${rule.spn}: unknown family ${JSON.stringify(rule.family)}`);
    for (const family of rule.nodePort === 0 ? [] : rule.family === undefined ? FAMILIES : [rule.family]) {
      const key = `${family} ${protocol} ${rule.nodePort}`;
      if (seenNodePorts.has(key)) {
        dropped.push({ spn: rule.spn, reason: `${family} node port ${protocol} ${rule.nodePort} already taken` });
      } else {
        seenNodePorts.add(key);
        nodePorts[family].push({ spn: rule.spn, protocol, nodePort: rule.nodePort, proxyPort: rule.proxyPort });
      }
    }
    const rejectKey = `${protocol} ${rule.proxyPort}`;
    if (rule.noEndpoints === true && !seenRejects.has(rejectKey)) {
      seenRejects.add(rejectKey);
      rejects.push({ spn: rule.spn, protocol, proxyPort: rule.proxyPort });
    }
  }

  const familyPlan = (family: IPFamily): FamilyPlan => {
    const sameFamily = bind.family === family;
    // A specific bind address has one listener, of its own family: the other family has nowhere to go.
    const container: Target | undefined = bindIsAny ? { kind: 'redirect' } : sameFamily ? { kind: 'dnat', ip: bind.address } : undefined;
    const hostIP = bindIsAny ? hostIPs[family] : sameFamily ? bind.address : undefined;
    return {
      family,
      portals: portals[family],
      nodePorts: nodePorts[family],
      rejects,
      nodePortIPs: context.nodePortIPs === undefined ? undefined : nodePortIPs[family],
      container,
      host: hostIP === undefined ? undefined : { kind: 'dnat', ip: hostIP },
    };
  };
  return { IPv4: familyPlan('IPv4'), IPv6: familyPlan('IPv6'), dropped };
}

/** `[ip]:port` for IPv6, `ip:port` for IPv4: the --to-destination and nft forms. */
export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function isAnyAddress(address: string): boolean {
  const ip = parseIP(address);
  return ip !== undefined && (ip.address === '0.0.0.0' || ip.address === '::');
}

function familyIP(text: string | undefined, family: IPFamily, what: string): string | undefined {
  if (text === undefined || text === '') return undefined;
  const ip = parseIP(text);
  if (!ip || ip.family !== family) throw new RulesError(`invalid ${what} ${JSON.stringify(text)}: not an ${family} address`);
  return ip.address;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RulesError(`${what} ${port} is not in 1-65535`);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
