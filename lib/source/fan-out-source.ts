import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from './service-source.js';

/**
 * One source read once, delivered to more than one handler: the agent, which keeps only the
 * services it proxies, and others that need every service (the DNS zone needs the headless and
 * ExternalName ones too). Each event reaches the handlers in order, the started one first.
 */
export class FanOutSource implements ServiceSource {
  readonly kind: string;
  readonly #inner: ServiceSource;
  readonly #also: readonly ServiceSourceHandler[];
  /** Present exactly when the inner source reports health. */
  readonly health?: () => SourceHealth;

  constructor(inner: ServiceSource, also: readonly ServiceSourceHandler[]) {
    this.#inner = inner;
    this.#also = also;
    this.kind = inner.kind;
    if (inner.health) this.health = () => inner.health!();
  }

  start(handler: ServiceSourceHandler): Promise<void> {
    const all = [handler, ...this.#also];
    return this.#inner.start({
      onServiceChange: (key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined) => {
        for (const h of all) h.onServiceChange(key, previous, current);
      },
      onEndpointSliceChange: (key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined) => {
        for (const h of all) h.onEndpointSliceChange(key, previous, current);
      },
      onSynced: () => {
        for (const h of all) h.onSynced();
      },
    });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  destroy(): void {
    this.#inner.destroy();
  }
}
