import type { ServiceSpec } from '../model/service.js';
import type { HostsEntry } from './hosts-block.js';

/**
 * The hosts-file lines for the services served: for each address of a service,
 * `service.ns.svc.<zone>` (first, so that it is the canonical name), `service.ns`, and the bare
 * `service`. A pod resolves the bare name in its own namespace; this machine has none, so the bare
 * name is written only for a service whose name no other served service has: with `web` in two
 * namespaces, `web` alone would be a guess. Sorted by namespace and name, so the block is the same
 * for the same services.
 */
export function hostsEntries(services: Iterable<ServiceSpec>, zone: string): HostsEntry[] {
  const list = [...services].sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
  const count = new Map<string, number>();
  for (const svc of list) count.set(svc.name, (count.get(svc.name) ?? 0) + 1);
  const entries: HostsEntry[] = [];
  for (const svc of list) {
    const names = [`${svc.name}.${svc.namespace}.svc.${zone}`, `${svc.name}.${svc.namespace}`];
    if (count.get(svc.name) === 1) names.push(svc.name);
    for (const ip of svc.clusterIPs) entries.push({ ip, names });
  }
  return entries;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
