import type { IPFamily } from '../model/ip-address.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import type { ProxySocketKey, ServicePortName } from '../model/service-port-name.js';
import type { ListenAddress } from '../proxy/proxy-socket.js';
import type { Portal } from '../rules/rule-backend.js';
import { directListenAddresses } from './listen-addresses.js';
import type { LocalAddresses } from './local-addresses.js';

export interface PlanContext {
  readonly bindAddress: string;
  readonly local: LocalAddresses;
  /** Node IPs for NodePorts (--nodeport-addresses), or undefined for every address. */
  readonly nodePortIPs: readonly string[] | undefined;
  /** Whether this node has IPv6 at all: NodePorts then listen (or are redirected) in both families. Default false. */
  readonly ipv6?: boolean;
}

/** Where one service port's proxy socket listens, and what must change for it to need a new one. */
export interface ListenPlan {
  readonly listen: readonly ListenAddress[];
  readonly signature: string;
}

/**
 * Which traffic of a service port a proxy socket serves. Internal and external traffic get sockets
 * of their own only when their traffic policies differ (say externalTrafficPolicy: Local with
 * internalTrafficPolicy: Cluster): each then balances over its own endpoint set.
 */
export type PortalScope = 'all' | 'internal' | 'external';

/**
 * The portals of a service port that one proxy socket serves: a scope, and for a dual-stack service
 * one IP family. Each family of a dual-stack service has a socket of its own, balancing over that
 * family's endpoints only, as kube-proxy's per-family proxiers do; a single-stack service has one
 * socket for every family (family undefined) and keeps its plain `ns/name:port` key.
 */
export interface PortalGroup {
  readonly scope: PortalScope;
  readonly family: IPFamily | undefined;
}

/** The families of a service's ClusterIPs, primary first. */
export function familiesOf(svc: ServiceSpec): IPFamily[] {
  const out: IPFamily[] = [];
  for (const ip of svc.clusterIPs) {
    const family = familyOf(ip);
    if (!out.includes(family)) out.push(family);
  }
  return out;
}

/** The groups a service port is served in: its scopes, times its families when it is dual-stack. */
export function groupsOf(svc: ServiceSpec, port: ServicePortSpec): PortalGroup[] {
  const families = familiesOf(svc);
  const scopes = scopesOf(svc, port);
  // The common case, made once per port at start for every Service: one group for everything.
  if (families.length <= 1 && scopes.length === 1 && scopes[0] === 'all') return [ALL];
  const split: readonly (IPFamily | undefined)[] = families.length > 1 ? families : [undefined];
  return scopes.flatMap((scope) => split.map((family) => ({ scope, family })));
}

/**
 * The key of a group's socket in the agent, the balancer, status and metrics: the ServicePortName,
 * with the scope and family in parentheses when the port is split (`ns/web:http (external, IPv6)`).
 */
export function groupKey(spn: ServicePortName, group: PortalGroup): ProxySocketKey {
  const parts = [...(group.scope === 'all' ? [] : [group.scope]), ...(group.family === undefined ? [] : [group.family])];
  return parts.length === 0 ? spn : (`${spn} (${parts.join(', ')})` as ProxySocketKey);
}

export function familyOf(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

/** True when the service has portals reached from outside the cluster: externalIPs, LB IPs, NodePorts. */
export function hasExternalPortals(svc: ServiceSpec, port: ServicePortSpec): boolean {
  return svc.externalIPs.length > 0 || svc.loadBalancerIPs.length > 0 || port.nodePort > 0;
}

/** The scopes a service port is served in. */
export function scopesOf(svc: ServiceSpec, port: ServicePortSpec): PortalScope[] {
  return svc.internalTrafficPolicy !== svc.externalTrafficPolicy && hasExternalPortals(svc, port) ? ['internal', 'external'] : ['all'];
}

/**
 * Every portal of a service port in a scope (and of one family, when given): the addresses rules
 * capture (or, in none mode, listeners bind).
 */
export function portalsOf(svc: ServiceSpec, port: ServicePortSpec, scope: PortalScope = 'all', family?: IPFamily): Portal[] {
  const internal = scope !== 'external' ? svc.clusterIPs.map((ip) => ({ ip, port: port.port, kind: 'clusterIP' as const })) : [];
  const all =
    scope === 'internal'
      ? internal
      : [
          ...internal,
          ...svc.externalIPs.map((ip) => ({ ip, port: port.port, kind: 'externalIP' as const })),
          ...svc.loadBalancerIPs.map((ip) => ({ ip, port: port.port, kind: 'loadBalancerIP' as const })),
        ];
  return family === undefined ? all : all.filter((p) => familyOf(p.ip) === family);
}

/** The addresses of portalsOf(), without making the portals. */
function portalIPsOf(svc: ServiceSpec, scope: PortalScope, family: IPFamily | undefined): string[] {
  const out: string[] = [];
  const add = (ips: readonly string[]): void => {
    for (const ip of ips) if (family === undefined || familyOf(ip) === family) out.push(ip);
  };
  if (scope !== 'external') add(svc.clusterIPs);
  if (scope !== 'internal') {
    add(svc.externalIPs);
    add(svc.loadBalancerIPs);
  }
  return out;
}

export function serviceIPs(svc: ServiceSpec): string[] {
  return [...svc.clusterIPs, ...svc.externalIPs, ...svc.loadBalancerIPs];
}

/**
 * `--redirect none`: listen on the portal addresses this machine has (all of them once
 * --assign-service-ips has added them), and on the node addresses at the NodePort.
 *
 * NodePorts listen in both families. A single-stack service binds `::` without IPV6_V6ONLY (one
 * socket for both families) on a node with IPv6; each family's socket of a dual-stack service binds
 * its own family's any-address (`::` with IPV6_V6ONLY beside `0.0.0.0`), so each family's NodePort
 * reaches that family's endpoints.
 */
export function directPlan(svc: ServiceSpec, port: ServicePortSpec, ctx: PlanContext, group: PortalGroup = ALL): ListenPlan {
  const ips = portalIPsOf(svc, group.scope, group.family);
  // The external socket of a split port without local external IPs still has its NodePort.
  const listen = ips.length > 0 || group.scope !== 'external' ? directListenAddresses(ips, port, fallbackAddress(ctx.bindAddress, group.family), ctx.local) : [];
  if (port.nodePort > 0 && group.scope !== 'internal') {
    if (ctx.nodePortIPs !== undefined) {
      for (const host of ctx.nodePortIPs) if (group.family === undefined || familyOf(host) === group.family) listen.push({ host, port: port.nodePort });
    } else if (group.family === 'IPv6') {
      listen.push({ host: '::', port: port.nodePort, ipv6Only: true });
    } else if (group.family === 'IPv4') {
      listen.push({ host: '0.0.0.0', port: port.nodePort });
    } else {
      listen.push({ host: ctx.ipv6 === true || ctx.bindAddress.includes(':') ? '::' : '0.0.0.0', port: port.nodePort });
    }
  }
  return { listen, signature: listenSignature(port.protocol, listen) };
}

/**
 * A listen plan's addresses as one string, built by hand: JSON.stringify cost about 8 µs a port,
 * 0.1 s of a first sync with 10,000 ports. Only ever compared with another plan's signature.
 * Joined, not concatenated: each port keeps its signature, and one flat string is about a third of
 * the cons strings and parts that + leaves.
 */
function listenSignature(protocol: string, listen: readonly ListenAddress[]): string {
  const parts = [protocol];
  for (const a of listen) parts.push('|', a.host, ' ', String(a.port), a.ipv6Only === true ? ' v6only' : '');
  return parts.join('');
}

/**
 * Where a group listens when none of its portal addresses is on this machine: --bind-address, or,
 * for one family of a dual-stack service with an any-address bind, that family's any-address (the
 * two families' sockets share the service port).
 */
function fallbackAddress(bindAddress: string, family: IPFamily | undefined): Omit<ListenAddress, 'port'> {
  if (family === undefined || (bindAddress !== '0.0.0.0' && bindAddress !== '::')) return { host: bindAddress };
  return family === 'IPv6' ? { host: '::', ipv6Only: true } : { host: '0.0.0.0' };
}

/**
 * `--redirect iptables|nftables`: one listener on --bind-address at a proxy port chosen when it
 * opens; portals are the rules' business, so a changed externalIP does not touch the listener.
 * With the IPv4 any-address and IPv6 portals (or NodePorts on a node with IPv6), '::' is bound
 * instead: a dual-stack socket receives the redirected traffic of both families on one port.
 */
export function redirectPlan(svc: ServiceSpec, port: ServicePortSpec, ctx: PlanContext, group: PortalGroup = ALL): ListenPlan {
  let host = ctx.bindAddress;
  const ipv6NodePort = port.nodePort > 0 && group.scope !== 'internal' && ctx.ipv6 === true;
  const ipv6 = group.family === 'IPv6' || (group.family === undefined && (serviceIPs(svc).some((ip) => ip.includes(':')) || ipv6NodePort));
  if (host === '0.0.0.0' && ipv6) host = '::';
  return { listen: [{ host, port: 0 }], signature: JSON.stringify([port.protocol, host, port.nodePort]) };
}

const ALL: PortalGroup = { scope: 'all', family: undefined };
