import type { Endpoint } from './endpoint.js';
import type { EndpointHints } from './endpoint-slice.js';
import type { IPFamily } from './ip-address.js';
import { availableForTopology, topologyMode } from './topology.js';
import type { NodeTopology } from './topology.js';

/** Which of a service port's endpoints a portal uses. */
export interface EndpointFilter {
  /** Only endpoints on nodes this accepts (Local traffic policies). */
  readonly accept?: (nodeName: string) => boolean;
  /** Only addresses of this family: a portal of one family balances over that family's endpoints. */
  readonly family?: IPFamily;
  /** This node's zone and name, for EndpointSlice hints and trafficDistribution. */
  readonly topology?: NodeTopology;
}

/** One address of a service port, merged over the slices that list it. */
export interface MergedEndpoint {
  endpoint: Endpoint;
  ready: boolean;
  fallback: boolean;
  hints: EndpointHints | undefined;
}

/**
 * What EndpointsCache.endpointsFor gives from a port's merged addresses, sorted by key: the ready
 * ones (narrowed by topology), else the serving and terminating ones.
 */
export function chooseEndpoints(all: readonly MergedEndpoint[], filter: EndpointFilter): Endpoint[] {
  // The one address most ports have: without hints (or a topology to apply them to) it is used
  // as it is, with no filtered copies, hint lists or closures for each of 10,000 ports.
  if (all.length === 1) {
    const m = all[0]!;
    if (m.ready && (m.hints === undefined || filter.accept !== undefined || filter.topology === undefined)) return [m.endpoint];
    if (!m.ready) return m.fallback ? [m.endpoint] : [];
  }
  const ready = all.filter((m) => m.ready);
  if (ready.length === 0) return all.filter((m) => m.fallback).map((m) => m.endpoint);
  const where = filter.accept ? undefined : filter.topology;
  if (where === undefined) return ready.map((m) => m.endpoint);
  // A mode is chosen only when some ready endpoint is hinted for here, so this is never empty.
  const mode = topologyMode(
    ready.map((m) => m.hints),
    where,
  );
  if (mode === '') return ready.map((m) => m.endpoint);
  return ready.filter((m) => availableForTopology(m.hints, mode, where)).map((m) => m.endpoint);
}
