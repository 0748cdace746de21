import { logger } from '../log.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from './service-source.js';

const log = logger('source');

/**
 * One source read once, delivered to more than one handler: the agent, which keeps only the
 * services it proxies, and others that need every service (the DNS zone needs the headless and
 * ExternalName ones too). Each event reaches the started handler first, then the others; a
 * failure in one of the others is logged and never reaches the started one, so the data path
 * does not depend on them.
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
    const others = (event: string, key: string, deliver: (h: ServiceSourceHandler) => void): void => {
      for (const h of this.#also) {
        try {
          deliver(h);
        } catch (err) {
          log.error('handler failed on a source event', { event, key, error: (err as Error).message });
        }
      }
    };
    return this.#inner.start({
      onServiceChange: (key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined) => {
        handler.onServiceChange(key, previous, current);
        others('service', key, (h) => h.onServiceChange(key, previous, current));
      },
      onEndpointSliceChange: (key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined) => {
        handler.onEndpointSliceChange(key, previous, current);
        others('endpointSlice', key, (h) => h.onEndpointSliceChange(key, previous, current));
      },
      onSynced: () => {
        handler.onSynced();
        others('synced', '', (h) => h.onSynced());
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
