import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';

/** Receives what a ServiceSource learns. previous/current undefined mean "did not exist". */
export interface ServiceSourceHandler {
  onServiceChange(key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void;
  /** key is `namespace/sliceName`. */
  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void;
  /** Called once, after the initial state has been delivered in full. */
  onSynced(): void;
  /**
   * The Node this proxy runs on changed (labels, deletion, taints); undefined when it is not
   * known (none in the manifests). Sources that know no Node never call it.
   */
  onNodeChange?(node: NodeSpec | undefined): void;
}

/** How a source's connection to where it reads from is doing (a Kubernetes API server). */
export interface SourceHealth {
  readonly connected: boolean;
  /** Last successful list, watch connection or event (ms since the epoch; 0 before the first). */
  readonly lastSuccessMs: number;
  readonly lastError?: string;
  readonly informerRestarts: number;
}

/** Where Services and their endpoints come from: manifest files, or a Kubernetes API server. */
export interface ServiceSource {
  /** For logs: `manifests` or `kubernetes`. */
  readonly kind: string;
  /** Delivers the initial state, calls onSynced, then keeps delivering changes until closed. */
  start(handler: ServiceSourceHandler): Promise<void>;
  /** Stops watching. Idempotent. */
  close(): Promise<void>;
  /** Stops at once. Idempotent. */
  destroy(): void;
  /** Sources that can go stale (an API server) report how they are doing. */
  health?(): SourceHealth;
}
