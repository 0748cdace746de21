import { logger } from '../log.js';
import type { EndpointsCache } from '../model/endpoints-cache.js';
import { parseIP } from '../model/ip-address.js';
import { localReadyEndpoints } from '../model/local-ready-endpoints.js';
import { keyOfService, needsHealthCheck } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import { ServiceHealthServer } from '../server/service-health-server.js';
import type { ServiceHealth } from '../server/service-health-server.js';

export interface ServiceHealthChecksOptions {
  /** Where the local endpoint counts are read, at every request: they follow EndpointSlices at once. */
  readonly endpoints: EndpointsCache;
  /** Whether an endpoint's node is this node. */
  readonly isLocal: (nodeName: string) => boolean;
  /** kube-proxy's serviceProxyHealthy: the agent's own health. */
  readonly proxyHealthy: () => boolean;
}

/** The health check of one service, open or waiting to be retried. */
interface Check {
  service: ServiceSpec;
  readonly port: number;
  /** The addresses it was opened for, joined: a change reopens it. */
  readonly hostsKey: string;
  readonly server: ServiceHealthServer;
  open: boolean;
  /** The last reason it could not open, logged once until it changes. */
  error: string | undefined;
}

const log = logger('service-health');

/**
 * The health check node ports of the proxied services (kube-proxy's service health server): for
 * each LoadBalancer Service with externalTrafficPolicy Local and a healthCheckNodePort, one
 * listener that cloud load balancers ask whether this node has ready endpoints of the service.
 *
 * In every redirect mode it is a plain listener on the node addresses, never a redirect: the
 * port belongs to no Service portal, and kube-proxy listens on it directly too. sync() follows the
 * services (opening, moving and closing listeners) and retries one that could not bind, such as a
 * port another process holds: one error line, then a retry at every sync, never a crash.
 */
export class ServiceHealthChecks {
  readonly #options: ServiceHealthChecksOptions;
  readonly #checks = new Map<ServiceKey, Check>();
  #closed = false;

  constructor(options: ServiceHealthChecksOptions) {
    this.#options = options;
  }

  /**
   * Makes the listeners match `services` (the proxied ones; the rest are ignored), on `hosts`
   * (the --nodeport-addresses IPs; undefined for every address).
   */
  async sync(services: Iterable<ServiceSpec>, hosts: readonly string[] | undefined): Promise<void> {
    if (this.#closed) return;
    const hostsKey = hosts === undefined ? '*' : [...hosts].sort().join(',');
    const wanted = new Map<ServiceKey, ServiceSpec>();
    for (const svc of services) {
      // Without a port (a manifest may leave it out; the API server always allocates one) there is nothing to serve.
      if (!needsHealthCheck(svc) || svc.healthCheckNodePort === 0) continue;
      wanted.set(keyOfService(svc), svc);
    }
    for (const [key, check] of this.#checks) {
      const svc = wanted.get(key);
      if (svc && svc.healthCheckNodePort === check.port && hostsKey === check.hostsKey) {
        check.service = svc;
        continue;
      }
      this.#checks.delete(key);
      // The port is released at once; requests in progress finish without holding up the sync.
      void check.server.close();
      if (check.open) log.info('closed health check', { service: key, port: check.port });
    }
    for (const [key, svc] of wanted) {
      let check = this.#checks.get(key);
      if (!check) {
        const server = new ServiceHealthServer({ namespace: svc.namespace, name: svc.name, port: svc.healthCheckNodePort, hosts, health: () => this.#health(key) });
        check = { service: svc, port: svc.healthCheckNodePort, hostsKey, server, open: false, error: undefined };
        this.#checks.set(key, check);
      }
      if (!check.open) await this.#open(key, check);
    }
  }

  async #open(key: ServiceKey, check: Check): Promise<void> {
    try {
      await check.server.start();
    } catch (err) {
      const message = (err as Error).message;
      if (check.error !== message) log.error('cannot open health check', { service: key, port: check.port, error: message });
      check.error = message;
      return;
    }
    check.open = true;
    if (log.isInfoEnabled()) log.info(check.error ? 'health check recovered' : 'opened health check', { service: key, port: check.port, addresses: check.server.addresses().join(',') });
    check.error = undefined;
  }

  #health(key: ServiceKey): ServiceHealth {
    const check = this.#checks.get(key);
    return { localEndpoints: check ? this.#localEndpoints(check.service) : 0, serviceProxyHealthy: this.#options.proxyHealthy() };
  }

  /** Counted in the family of the primary cluster IP, as kube-proxy's proxier of that family counts. */
  #localEndpoints(svc: ServiceSpec): number {
    const family = parseIP(svc.clusterIPs[0] ?? '')?.family ?? 'IPv4';
    return localReadyEndpoints(this.#options.endpoints.slicesOf(keyOfService(svc)), family, this.#options.isLocal);
  }

  /** Closes every health check; requests in progress finish. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const checks = [...this.#checks.values()];
    this.#checks.clear();
    await Promise.all(checks.map((c) => c.server.close()));
  }

  /** Closes every health check and its connections at once. Idempotent. */
  destroy(): void {
    this.#closed = true;
    for (const check of this.#checks.values()) check.server.destroy();
    this.#checks.clear();
  }
}
