import { isDeepStrictEqual } from 'node:util';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';

export interface ServiceChange {
  /** The state the proxy last applied (undefined: the service did not exist). */
  readonly previous: ServiceSpec | undefined;
  /** The newest state seen (undefined: the service is gone). */
  readonly current: ServiceSpec | undefined;
}

/**
 * Coalesces service changes between syncs, as the legacy proxier's serviceChange map did:
 * the oldest `previous` is kept and `current` is always the latest, so add+update = add(latest),
 * add+delete = nothing, update+update keeps the oldest previous, delete+add = update; a change
 * that ends where it started is dropped.
 */
export class ServiceChangeTracker {
  readonly #changes = new Map<ServiceKey, ServiceChange>();

  /** Records a change; returns true when something is now pending for that service. */
  update(key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): boolean {
    const pending = this.#changes.get(key);
    const change: ServiceChange = { previous: pending ? pending.previous : previous, current };
    if (isDeepStrictEqual(change.previous, change.current)) {
      this.#changes.delete(key);
      return false;
    }
    this.#changes.set(key, change);
    return true;
  }

  /** The pending changes, oldest first; the tracker is empty afterwards. */
  drain(): Map<ServiceKey, ServiceChange> {
    const out = new Map(this.#changes);
    this.#changes.clear();
    return out;
  }

  get size(): number {
    return this.#changes.size;
  }

  /** The pending change of one service, for inspection. */
  get(key: ServiceKey): ServiceChange | undefined {
    return this.#changes.get(key);
  }
}
