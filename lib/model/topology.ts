import type { EndpointHints } from './endpoint-slice.js';

/** Where this proxy runs, for EndpointSlice hints. */
export interface NodeTopology {
  /** This node's `topology.kubernetes.io/zone` label; '' when unknown. */
  readonly zone: string;
  readonly nodeName: string;
}

/** How a service's ready endpoints are narrowed: '' not at all, else to those hinted for this node or zone. */
export type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

/**
 * The topology mode the hints of a service's ready endpoints call for, as kube-proxy decides it
 * (pkg/proxy/topology.go, 1.33 and later):
 *
 * - PreferSameNode when every ready endpoint has a node hint and one is hinted for this node;
 * - else PreferSameZone when every ready endpoint has a zone hint and one is hinted for this zone;
 * - else '' (every ready endpoint).
 *
 * Only the hints count. The Service's `trafficDistribution` (and, before it, the
 * `service.kubernetes.io/topology-mode` annotation) tells the EndpointSlice controller which hints
 * to write; since Kubernetes 1.31 kube-proxy no longer looks at either. Requiring a hint on every
 * ready endpoint keeps a half-written set of hints (slices updated one after the other) from
 * piling all traffic on the few endpoints that already have one; requiring one for this node or
 * zone keeps a node whose zone has no endpoints from being cut off.
 */
export function topologyMode(readyHints: readonly (EndpointHints | undefined)[], where: NodeTopology): TopologyMode {
  if (readyHints.length === 0) return '';
  const all = (pick: (h: EndpointHints) => readonly string[], want: string): boolean =>
    readyHints.every((h) => h !== undefined && pick(h).length > 0) && want !== '' && readyHints.some((h) => pick(h!).includes(want));
  if (all((h) => h.forNodes, where.nodeName)) return 'PreferSameNode';
  if (all((h) => h.forZones, where.zone)) return 'PreferSameZone';
  return '';
}

/** Whether an endpoint with these hints is used here in this mode (no fallback: that is in choosing the mode). */
export function availableForTopology(hints: EndpointHints | undefined, mode: TopologyMode, where: NodeTopology): boolean {
  switch (mode) {
    case '':
      return true;
    case 'PreferSameNode':
      return hints?.forNodes.includes(where.nodeName) ?? false;
    case 'PreferSameZone':
      return hints?.forZones.includes(where.zone) ?? false;
  }
}
