import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';

/** Receives what a ServiceSource learns. previous/current undefined mean "did not exist". */
export interface ServiceSourceHandler {
  onServiceChange(key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void;
  /** key is `namespace/sliceName`. */
  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void;
  /** Called once, after the initial state has been delivered in full. */
  onSynced(): void;
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
}
