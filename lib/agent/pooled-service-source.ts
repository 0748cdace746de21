import { ServiceIPPoolExhaustedError } from '../errors.js';
import { logger } from '../log.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { NodeSpec } from '../model/node.js';
import { isProxied } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from '../source/service-source.js';
import type { ServiceIPPool } from './service-ip-pool.js';

const log = logger('service-ip-pool');

/**
 * --service-ip-pool: a ServiceSource that hands every proxied service on with its pool address as
 * its only portal, in place of its ClusterIPs. Everything downstream (listeners, status, the hosts
 * block, DNS) then sees that address and needs no knowledge of the pool. NodePorts, externalIPs,
 * LoadBalancer IPs and health check node ports are dropped too: a laptop serving a cluster's
 * Services should not open that cluster's NodePorts on its own networks.
 *
 * The initial state is held back until the source has delivered all of it, then assigned in sorted
 * key order (see ServiceIPPool for why). A service that finds the pool full gets one error line,
 * is handed on without an address (so it is not served), and gets one as soon as another service
 * frees its address.
 */
export class PooledServiceSource implements ServiceSource {
  readonly #inner: ServiceSource;
  readonly #pool: ServiceIPPool;
  /** Services as the source gave them, for those to hand on again when an address frees up. */
  readonly #original = new Map<ServiceKey, ServiceSpec>();
  /** Services as handed on (with their pool address), for `previous`. */
  readonly #delivered = new Map<ServiceKey, ServiceSpec>();
  /** Proxied services left without an address, in the order they asked. */
  readonly #waiting = new Set<ServiceKey>();
  #handler: ServiceSourceHandler | undefined;
  #synced = false;
  /** The wrapped source's, when it has one: only sources that can go stale report health. */
  readonly health?: () => SourceHealth;

  constructor(inner: ServiceSource, pool: ServiceIPPool) {
    this.#inner = inner;
    if (inner.health) this.health = () => inner.health!();
    this.#pool = pool;
  }

  get kind(): string {
    return this.#inner.kind;
  }

  async start(handler: ServiceSourceHandler): Promise<void> {
    this.#handler = handler;
    const onNodeChange = handler.onNodeChange?.bind(handler);
    await this.#inner.start({
      onServiceChange: (key, _previous, current) => this.#onServiceChange(key, current),
      onEndpointSliceChange: (key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined) => handler.onEndpointSliceChange(key, previous, current),
      onSynced: () => this.#onSynced(),
      ...(onNodeChange ? { onNodeChange: (node: NodeSpec | undefined) => onNodeChange(node) } : {}),
    });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  destroy(): void {
    this.#inner.destroy();
  }

  #onServiceChange(key: ServiceKey, current: ServiceSpec | undefined): void {
    if (current) this.#original.set(key, current);
    else this.#original.delete(key);
    if (!this.#synced) return;
    const freed = this.#deliver(key);
    if (freed) this.#retryWaiting();
  }

  #onSynced(): void {
    this.#synced = true;
    for (const key of [...this.#original.keys()].sort()) this.#deliver(key);
    this.#handler!.onSynced();
  }

  /** Hands on the current state of one service; true when that freed an address. */
  #deliver(key: ServiceKey): boolean {
    const current = this.#original.get(key);
    let freed = false;
    let next: ServiceSpec | undefined;
    if (current && isProxied(current)) {
      const had = this.#pool.addressOf(key);
      const ip = this.#pool.assign(key);
      if (ip !== undefined && had === undefined) log.info('service address assigned', { service: key, address: ip });
      if (ip === undefined) {
        if (!this.#waiting.has(key)) {
          const err = new ServiceIPPoolExhaustedError(`service ${key}: every address of --service-ip-pool is taken; it is not served until another service frees one`, { service: key });
          log.error('service ip pool exhausted', { service: key, code: err.code, error: err.message });
        }
        this.#waiting.add(key);
      } else {
        this.#waiting.delete(key);
      }
      next = withPortal(current, ip);
    } else {
      this.#waiting.delete(key);
      freed = this.#pool.addressOf(key) !== undefined;
      this.#pool.release(key);
      next = current;
    }
    const previous = this.#delivered.get(key);
    if (next) this.#delivered.set(key, next);
    else this.#delivered.delete(key);
    this.#handler!.onServiceChange(key, previous, next);
    return freed;
  }

  #retryWaiting(): void {
    for (const key of [...this.#waiting]) {
      if (this.#pool.addressOf(key) === undefined && !this.#pool.hasFree()) return;
      this.#deliver(key);
    }
  }
}

/** The service with `ip` as its only portal; with no address, one that is not proxied. */
function withPortal(svc: ServiceSpec, ip: string | undefined): ServiceSpec {
  return {
    ...svc,
    clusterIPs: ip === undefined ? [] : [ip],
    externalIPs: [],
    loadBalancerIPs: [],
    healthCheckNodePort: 0,
    ports: svc.ports.map((p) => (p.nodePort === 0 ? p : { ...p, nodePort: 0 })),
  };
}
