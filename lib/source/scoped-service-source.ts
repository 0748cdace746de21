import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { LabelSelector } from '../model/label-selector.js';
import type { NodeSpec } from '../model/node.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from './service-source.js';

/** Which Services are served: --namespace and --selector. */
export interface ServiceScope {
  /** Only these namespaces; empty means every namespace. */
  readonly namespaces: readonly string[];
  /** Only Services whose labels this selector matches; undefined means every Service. */
  readonly selector: LabelSelector | undefined;
}

/**
 * Narrows what another source delivers to the Services in scope, for manifests and the API alike.
 * A Service that leaves the scope (its labels change) is delivered as deleted, one that enters it
 * as added. EndpointSlices outside the namespaces are dropped; the others are passed on whatever
 * their Service's labels (a slice only ever takes effect through its Service, so the endpoints of
 * a Service out of scope are never served).
 *
 * Filtering here, on the client, rather than with a label selector and namespaced watches on the
 * API server: one code path for both sources; a label change is an ordinary update (a selector
 * watch would deliver it as a deletion that must be told apart); and the RBAC stays as it is.
 * What it costs: every Service and EndpointSlice of the cluster still crosses the wire.
 */
export class ScopedServiceSource implements ServiceSource {
  readonly kind: string;
  readonly #inner: ServiceSource;
  readonly #namespaces: ReadonlySet<string> | undefined;
  readonly #selector: LabelSelector | undefined;
  /** The inner source's, when it has one (manifests do not go stale). */
  readonly health?: () => SourceHealth;

  constructor(inner: ServiceSource, scope: ServiceScope) {
    this.#inner = inner;
    this.kind = inner.kind;
    this.#namespaces = scope.namespaces.length > 0 ? new Set(scope.namespaces) : undefined;
    this.#selector = scope.selector;
    if (inner.health) this.health = () => inner.health!();
  }

  /** Whether a Service is in scope. */
  serves(svc: ServiceSpec): boolean {
    return this.#inNamespace(svc.namespace) && (this.#selector === undefined || this.#selector.matches(svc.labels));
  }

  start(handler: ServiceSourceHandler): Promise<void> {
    const scoped: ServiceSourceHandler = {
      onServiceChange: (key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined) => {
        const before = previous !== undefined && this.serves(previous) ? previous : undefined;
        const after = current !== undefined && this.serves(current) ? current : undefined;
        if (before !== undefined || after !== undefined) handler.onServiceChange(key, before, after);
      },
      onEndpointSliceChange: (key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined) => {
        if (this.#inNamespace((current ?? previous)?.namespace ?? '')) handler.onEndpointSliceChange(key, previous, current);
      },
      onSynced: () => handler.onSynced(),
      ...(handler.onNodeChange ? { onNodeChange: (node: NodeSpec | undefined) => handler.onNodeChange!(node) } : {}),
    };
    return this.#inner.start(scoped);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  destroy(): void {
    this.#inner.destroy();
  }

  #inNamespace(namespace: string): boolean {
    return this.#namespaces === undefined || this.#namespaces.has(namespace);
  }
}
