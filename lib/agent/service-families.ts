import type { IPFamily } from '../model/ip-address.js';
import type { ServiceSpec } from '../model/service.js';
import { familiesOf } from './sync-status.js';

/**
 * How many applied Services use each IP family, kept up to date as Services are applied and
 * removed: what servedFamilies() answers of all of them, without walking them. Every sync reports
 * its families, and with 10,000 Services the walk was most of the work of a sync for one changed
 * Service.
 */
export class ServiceFamilies {
  readonly #counts = new Map<IPFamily, number>();

  /** A Service applied in place of `previous` (undefined: a new one). */
  set(previous: ServiceSpec | undefined, current: ServiceSpec): void {
    if (previous !== undefined) this.delete(previous);
    for (const family of familiesOf(current)) this.#counts.set(family, (this.#counts.get(family) ?? 0) + 1);
  }

  /** A Service no longer applied. */
  delete(previous: ServiceSpec): void {
    for (const family of familiesOf(previous)) {
      const n = (this.#counts.get(family) ?? 0) - 1;
      if (n > 0) this.#counts.set(family, n);
      else this.#counts.delete(family);
    }
  }

  /** As servedFamilies() of the applied Services: sorted, and IPv4 when there is none. */
  families(): IPFamily[] {
    return this.#counts.size === 0 ? ['IPv4'] : [...this.#counts.keys()].sort();
  }
}
