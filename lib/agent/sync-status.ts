import { parseIP } from '../model/ip-address.js';
import type { IPFamily } from '../model/ip-address.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import type { ChangeCounts } from './change-accounting.js';
import { hasExternalPortals } from './portal-plan.js';
import type { PortalScope } from './portal-plan.js';

/** Service ports with a Local traffic policy and endpoints, none of them on this node. */
export interface NoLocalEndpoints {
  readonly internal: number;
  readonly external: number;
}

/** What kube-proxy's sync metrics read of the agent, at scrape time. */
export interface SyncStatus extends ChangeCounts {
  /** When a sync was last requested by a change (ms since the epoch); undefined before. */
  readonly lastQueuedMs: number | undefined;
  /** The IP families of the proxied services (IPv4 when there are none). */
  readonly families: readonly IPFamily[];
  /** Per IP family of the services' cluster IPs. */
  readonly noLocalEndpoints: ReadonlyMap<IPFamily, NoLocalEndpoints>;
}

/** One listener of a service port, as the no-local-endpoints count needs it. */
export interface ScopedPort {
  readonly service: ServiceSpec;
  readonly port: ServicePortSpec;
  readonly scope: PortalScope;
  /** Endpoints the balancer has for this listener (after the traffic policy's filter). */
  readonly endpoints: number;
  /** Endpoints of the service port on any node. */
  readonly clusterEndpoints: number;
}

/**
 * The IP families a sync programs. kube-proxy runs one proxier per family and labels its sync
 * metrics with it; one sync here covers every family, so it is reported once for each family the
 * proxied services use.
 */
export function servedFamilies(services: Iterable<ServiceSpec>): IPFamily[] {
  const families = new Set<IPFamily>();
  for (const svc of services) for (const family of familiesOf(svc)) families.add(family);
  if (families.size === 0) families.add('IPv4');
  return [...families].sort();
}

/** The IP families of one Service's cluster IPs, each once. */
export function familiesOf(svc: ServiceSpec): Set<IPFamily> {
  const families = new Set<IPFamily>();
  // Without a colon a string is no IPv6 address, so parseIP would answer IPv4 or nothing (IPv4
  // here) alike: skipping it keeps a walk over 10,000 services from parsing them all.
  for (const ip of svc.clusterIPs) families.add(ip.includes(':') ? (parseIP(ip)?.family ?? 'IPv4') : 'IPv4');
  return families;
}

/**
 * kube-proxy's `sync_proxy_rules_no_local_endpoints_total`: service ports that have endpoints but
 * none on this node, under internalTrafficPolicy: Local ("internal") or, when reachable from
 * outside the cluster, externalTrafficPolicy: Local ("external"); counted once per IP family of
 * the service's cluster IPs, as each of kube-proxy's per-family proxiers counts it. A port split
 * into internal and external listeners is counted on each listener for its own scope.
 */
export function countNoLocalEndpoints(ports: Iterable<ScopedPort>): Map<IPFamily, NoLocalEndpoints> {
  const out = new Map<IPFamily, { internal: number; external: number }>();
  for (const p of ports) {
    if (p.endpoints > 0 || p.clusterEndpoints === 0) continue;
    const svc = p.service;
    const internal = p.scope !== 'external' && svc.internalTrafficPolicy === 'Local';
    const external = p.scope !== 'internal' && svc.externalTrafficPolicy === 'Local' && hasExternalPortals(svc, p.port);
    if (!internal && !external) continue;
    for (const family of new Set(svc.clusterIPs.map((ip) => parseIP(ip)?.family ?? 'IPv4'))) {
      const n = out.get(family) ?? { internal: 0, external: 0 };
      if (internal) n.internal++;
      if (external) n.external++;
      out.set(family, n);
    }
  }
  return out;
}
