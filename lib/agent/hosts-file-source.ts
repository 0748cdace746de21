import { isProxied } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { HostsFile } from '../names/hosts-file.js';
import { hostsEntries } from '../names/service-names.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from '../source/service-source.js';

/**
 * --hosts-file: a ServiceSource that passes everything through unchanged and keeps the hosts block
 * equal to the proxied services it has passed on (with --service-ip-pool, their pool addresses:
 * it wraps the PooledServiceSource). The agent closes and destroys its source on the way out, which
 * is when the block is removed.
 */
export class HostsFileSource implements ServiceSource {
  readonly #inner: ServiceSource;
  readonly #file: HostsFile;
  readonly #zone: string;
  readonly #services = new Map<ServiceKey, ServiceSpec>();
  #synced = false;
  /** The wrapped source's, when it has one: only sources that can go stale report health. */
  readonly health?: () => SourceHealth;

  constructor(inner: ServiceSource, file: HostsFile, clusterDomain: string) {
    this.#inner = inner;
    if (inner.health) this.health = () => inner.health!();
    this.#file = file;
    this.#zone = clusterDomain;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  async start(handler: ServiceSourceHandler): Promise<void> {
    await this.#inner.start({
      onServiceChange: (key, previous, current) => {
        if (current && isProxied(current)) this.#services.set(key, current);
        else this.#services.delete(key);
        handler.onServiceChange(key, previous, current);
        if (this.#synced) this.#publish();
      },
      onEndpointSliceChange: (key, previous, current) => handler.onEndpointSliceChange(key, previous, current),
      onSynced: () => {
        this.#synced = true;
        handler.onSynced();
        this.#publish();
      },
      ...(handler.onNodeChange ? { onNodeChange: handler.onNodeChange.bind(handler) } : {}),
    });
  }

  async close(): Promise<void> {
    await this.#inner.close();
    await this.#file.close();
  }

  destroy(): void {
    this.#inner.destroy();
    this.#file.destroy();
  }

  #publish(): void {
    this.#file.publish(hostsEntries(this.#services.values(), this.#zone));
  }
}
