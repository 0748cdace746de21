import { logger } from '../log.js';
import { isProxied } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { AddressAssigner } from '../rules/address-assigner.js';
import type { ServiceChange } from '../source/service-change-tracker.js';
import { serviceIPs } from './portal-plan.js';

const log = logger('agent');

/**
 * none mode with --assign-service-ips: the service IPs are on an interface while a Service needs
 * them. A sync adds the IPs of the Services it is about to apply before their listeners bind
 * them, and removes the stale ones once their listeners are closed. A failure is logged and
 * tried again at the next sync.
 */
export class ServiceAddresses {
  readonly #assigner: AddressAssigner;

  constructor(assigner: AddressAssigner) {
    this.#assigner = assigner;
  }

  /** Removes what a crashed run left behind. */
  async start(): Promise<void> {
    await this.#assigner.start();
  }

  /** Removes every address added. */
  async close(): Promise<void> {
    await this.#assigner.close();
  }

  /** Before the changes are applied: the applied Services' IPs and those of the changed ones. */
  async addFor(applied: Iterable<ServiceSpec>, changes: Iterable<ServiceChange>): Promise<void> {
    const ips = new Set([...applied].flatMap(serviceIPs));
    for (const { current } of changes) if (current && isProxied(current)) for (const ip of serviceIPs(current)) ips.add(ip);
    await this.#assign([...ips]);
  }

  /** After: only the applied Services' IPs. */
  async sync(applied: Iterable<ServiceSpec>): Promise<void> {
    await this.#assign([...applied].flatMap(serviceIPs));
  }

  async #assign(ips: string[]): Promise<void> {
    try {
      await this.#assigner.sync([...new Set(ips)]);
    } catch (err) {
      log.error('cannot assign service addresses', { error: (err as Error).message });
    }
  }
}
