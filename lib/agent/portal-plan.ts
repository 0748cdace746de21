import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import type { ListenAddress } from '../proxy/proxy-socket.js';
import type { Portal } from '../rules/rule-backend.js';
import { directListenAddresses } from './listen-addresses.js';
import type { LocalAddresses } from './local-addresses.js';

export interface PlanContext {
  readonly bindAddress: string;
  readonly local: LocalAddresses;
  /** Node IPs for NodePorts (--nodeport-addresses), or undefined for every address. */
  readonly nodePortIPs: readonly string[] | undefined;
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

/** True when the service has portals reached from outside the cluster: externalIPs, LB IPs, NodePorts. */
export function hasExternalPortals(svc: ServiceSpec, port: ServicePortSpec): boolean {
  return svc.externalIPs.length > 0 || svc.loadBalancerIPs.length > 0 || port.nodePort > 0;
}

/** The scopes a service port is served in. */
export function scopesOf(svc: ServiceSpec, port: ServicePortSpec): PortalScope[] {
  return svc.internalTrafficPolicy !== svc.externalTrafficPolicy && hasExternalPortals(svc, port) ? ['internal', 'external'] : ['all'];
}

/** Every portal of a service port in a scope: the addresses rules capture (or, in none mode, listeners bind). */
export function portalsOf(svc: ServiceSpec, port: ServicePortSpec, scope: PortalScope = 'all'): Portal[] {
  const internal = scope !== 'external' ? svc.clusterIPs.map((ip) => ({ ip, port: port.port, kind: 'clusterIP' as const })) : [];
  if (scope === 'internal') return internal;
  return [
    ...internal,
    ...svc.externalIPs.map((ip) => ({ ip, port: port.port, kind: 'externalIP' as const })),
    ...svc.loadBalancerIPs.map((ip) => ({ ip, port: port.port, kind: 'loadBalancerIP' as const })),
  ];
}

export function serviceIPs(svc: ServiceSpec): string[] {
  return [...svc.clusterIPs, ...svc.externalIPs, ...svc.loadBalancerIPs];
}

/**
 * `--redirect none`: listen on the portal addresses this machine has (all of them once
 * --assign-service-ips has added them), and on the node addresses at the NodePort.
 */
export function directPlan(svc: ServiceSpec, port: ServicePortSpec, ctx: PlanContext, scope: PortalScope = 'all'): ListenPlan {
  const ips = portalsOf(svc, port, scope).map((p) => p.ip);
  // The external socket of a split port without local external IPs still has its NodePort.
  const listen = ips.length > 0 || scope !== 'external' ? directListenAddresses(ips, port, ctx.bindAddress, ctx.local) : [];
  if (port.nodePort > 0 && scope !== 'internal') {
    const any = ctx.bindAddress.includes(':') ? '::' : '0.0.0.0';
    for (const host of ctx.nodePortIPs ?? [any]) listen.push({ host, port: port.nodePort });
  }
  return { listen, signature: JSON.stringify([port.protocol, listen]) };
}

/**
 * `--redirect iptables|nftables`: one listener on --bind-address at a proxy port chosen when it
 * opens; portals are the rules' business, so a changed externalIP does not touch the listener.
 * With the IPv4 any-address and IPv6 portals, '::' is bound instead: a dual-stack socket receives
 * the redirected traffic of both families on one port.
 */
export function redirectPlan(svc: ServiceSpec, port: ServicePortSpec, ctx: PlanContext, _scope: PortalScope = 'all'): ListenPlan {
  let host = ctx.bindAddress;
  if (host === '0.0.0.0' && serviceIPs(svc).some((ip) => ip.includes(':'))) host = '::';
  return { listen: [{ host, port: 0 }], signature: JSON.stringify([port.protocol, host, port.nodePort]) };
}
