import type { EndpointSliceSpec } from './endpoint-slice.js';
import type { IPFamily } from './ip-address.js';

/**
 * How many endpoints of one service are ready on this node, counted as kube-proxy's service health
 * check counts them (its LocalReadyEndpoints):
 *
 * - distinct addresses: a pod behind two service ports is one endpoint, not two;
 * - ready only: a node whose local pods are all terminating must fail the check, so that load
 *   balancers move away while those pods still finish what they serve;
 * - of one IP family: kube-proxy runs one proxier per family, each counting its own slices.
 *
 * Slices that declare an empty port list give no endpoint to proxy to and are not counted.
 */
export function localReadyEndpoints(slices: Iterable<EndpointSliceSpec>, family: IPFamily, isLocal: (nodeName: string) => boolean): number {
  const addresses = new Set<string>();
  for (const slice of slices) {
    if (slice.addressType !== family || slice.ports?.length === 0) continue;
    for (const e of slice.endpoints) {
      if (!e.ready || !isLocal(e.nodeName)) continue;
      for (const ip of e.addresses) addresses.add(ip);
    }
  }
  return addresses.size;
}
