/** The label that names a node's zone (kube-proxy's topology label). */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** The taint the Cluster Autoscaler puts on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

export interface NodeTaint {
  readonly key: string;
  /** '' when unset. */
  readonly value: string;
  /** NoSchedule, PreferNoSchedule or NoExecute; '' when unset. */
  readonly effect: string;
}

/** The v1 Node this proxy runs on: only what topology-aware routing and /healthz use. */
export interface NodeSpec {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `metadata.deletionTimestamp` is set: the node is being deleted. */
  readonly deleting: boolean;
  readonly taints: readonly NodeTaint[];
}

/** This node's zone ('' when the node or its zone label is unknown). */
export function zoneOf(node: NodeSpec | undefined): string {
  return node?.labels[ZONE_LABEL] ?? '';
}

/**
 * Whether load balancers should keep sending traffic to this node, as kube-proxy's /healthz
 * `nodeEligible` says: not when the node is being deleted or tainted for deletion by the
 * Cluster Autoscaler. An unknown node is eligible (kube-proxy's default until it has seen one).
 * `reason` says why not.
 */
export function nodeEligibility(node: NodeSpec | undefined): { readonly eligible: boolean; readonly reason?: string } {
  if (node === undefined) return { eligible: true };
  if (node.deleting) return { eligible: false, reason: `node ${node.name} is being deleted` };
  if (node.taints.some((t) => t.key === TO_BE_DELETED_TAINT)) return { eligible: false, reason: `node ${node.name} is tainted ${TO_BE_DELETED_TAINT}` };
  return { eligible: true };
}
