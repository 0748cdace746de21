import { logger } from '../log.js';
import type { EndpointFilter } from '../model/endpoints-cache.js';
import { isProxied, needsHealthCheck } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import type { ProxySocketKey, ServiceKey } from '../model/service-port-name.js';
import type { PlanContext } from './portal-plan.js';
import { newProxiedPort, wantedPorts } from './proxied-port.js';
import type { ProxiedPort, WantedPort } from './proxied-port.js';
import { affinityOf, schedulingOf } from './service-port-policies.js';
import { ServiceFamilies } from './service-families.js';
import { endpointsKeyOf } from './endpoints-key.js';
import type { ServicePortsOptions } from './service-ports-options.js';

const log = logger('agent');

const NO_KEYS: readonly ProxySocketKey[] = [];
const NO_PORTS: ReadonlyMap<ProxySocketKey, WantedPort> = new Map();

/**
 * The applied Services and the proxied ports of each, and the per-Service work of a sync:
 * kube-proxy's mergeService and unmergeService, and the push of endpoints to the balancer.
 */
export class ServicePorts {
  /** Services as last applied. */
  readonly services = new Map<ServiceKey, ServiceSpec>();
  /** The IP families of `services`, counted as they change. */
  readonly families = new ServiceFamilies();
  /**
   * The `services` with a health check node port (LoadBalancer, externalTrafficPolicy Local, a
   * port): a handful of them, where a sync used to look at all 10,000 Services to find them.
   */
  readonly healthChecked = new Map<ServiceKey, ServiceSpec>();
  readonly #o: ServicePortsOptions;
  readonly #ports = new Map<ProxySocketKey, ProxiedPort>();
  /** A Service's socket keys: an array, as most Services have one port (a Set costs 150 bytes more each). */
  readonly #keysByService = new Map<ServiceKey, ProxySocketKey[]>();
  /**
   * The ports a sync may have to open, retry or close: new ones, those without a listener or a
   * held node port, and those whose endpoints came or went. Every other port is as it should be,
   * so a sync for one changed Service does not walk 10,000 settled ones.
   */
  readonly #unsettled = new Set<ProxySocketKey>();

  constructor(options: ServicePortsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#ports.size;
  }

  get(key: ProxySocketKey): ProxiedPort | undefined {
    return this.#ports.get(key);
  }

  values(): IterableIterator<ProxiedPort> {
    return this.#ports.values();
  }

  /** The Services that have proxied ports. */
  serviceKeys(): IterableIterator<ServiceKey> {
    return this.#keysByService.keys();
  }

  /**
   * Makes one Service's sockets match its current spec (undefined: deleted): sockets whose
   * listener must change are closed and opened anew, the others keep their listener and take the
   * new settings. kube-proxy's mergeService and unmergeService in one.
   */
  async mergeService(serviceKey: ServiceKey, current: ServiceSpec | undefined, ctx: PlanContext): Promise<void> {
    const o = this.#o;
    let wanted: ReadonlyMap<ProxySocketKey, WantedPort> = NO_PORTS;
    if (current && isProxied(current)) {
      this.families.set(this.services.get(serviceKey), current);
      this.services.set(serviceKey, current);
      // Without a port (a manifest may leave it out; the API server always allocates one) there is nothing to serve.
      if (needsHealthCheck(current) && current.healthCheckNodePort !== 0) this.healthChecked.set(serviceKey, current);
      else this.healthChecked.delete(serviceKey);
      wanted = wantedPorts(current, ctx, o);
    } else {
      if (current) log.info('service not proxied', { service: serviceKey, reason: current.headless ? 'headless' : current.type === 'ExternalName' ? 'ExternalName' : 'no cluster IP' });
      const previous = this.services.get(serviceKey);
      if (previous !== undefined) this.families.delete(previous);
      this.services.delete(serviceKey);
      this.healthChecked.delete(serviceKey);
    }

    // The sockets that stay are listed before the others are closed, so the endpoint pushes of
    // slice events during those closes see only ports that exist.
    const keys: ProxySocketKey[] = [];
    const closing: ProxiedPort[] = [];
    for (const key of this.#keysByService.get(serviceKey) ?? NO_KEYS) {
      const st = this.#ports.get(key)!;
      const want = wanted.get(key);
      if (want && want.signature === st.signature) keys.push(key);
      else {
        this.#ports.delete(key);
        this.#unsettled.delete(key);
        closing.push(st);
      }
    }
    if (keys.length > 0) this.#keysByService.set(serviceKey, keys);
    else this.#keysByService.delete(serviceKey);
    for (const st of closing) {
      await o.opener.close(st);
      if (!wanted.has(st.key)) o.balancer.deleteService(st.key);
    }
    const opening: ProxiedPort[] = [];
    for (const [key, want] of wanted) {
      const st = this.#ports.get(key);
      o.balancer.newService(key, affinityOf(current!), schedulingOf(current!));
      if (st) {
        st.service = current!;
        st.port = want.port;
        o.opener.update(st);
        continue;
      }
      const added = newProxiedPort(key, want, current!);
      this.#ports.set(key, added);
      this.#unsettled.add(key);
      keys.push(key);
      opening.push(added);
    }
    // A copy of its own length: an array grown by push() from [] keeps room for 17 keys, 150 bytes
    // for each of 10,000 Services with one port.
    if (keys.length > 0) this.#keysByService.set(serviceKey, keys.slice());
    else this.#keysByService.delete(serviceKey);
    // Endpoints before listeners: a connection accepted as soon as a port opens (here or in a
    // worker, which learns them in this order) must find them.
    this.pushEndpoints(serviceKey);
    for (const st of opening) await o.opener.open(st);
  }

  /**
   * Gives the balancer the current endpoints of every port of a service; no listener is touched.
   * Returns whether a port went from no endpoints to some, or back.
   */
  pushEndpoints(serviceKey: ServiceKey): boolean {
    const svc = this.services.get(serviceKey);
    const keys = this.#keysByService.get(serviceKey);
    return svc !== undefined && keys !== undefined && this.#pushEndpoints(serviceKey, svc, keys);
  }

  /**
   * pushEndpoints() for a Service with ports. A method of its own: the 10,000 slices of a start
   * arrive before their Services are applied, and an optimised pushEndpoints made from those
   * calls alone was thrown away at the first real push.
   */
  #pushEndpoints(serviceKey: ServiceKey, svc: ServiceSpec, keys: readonly ProxySocketKey[]): boolean {
    const o = this.#o;
    let flipped = false;
    for (const key of keys) {
      const st = this.#ports.get(key)!;
      const policy = st.scope === 'external' ? svc.externalTrafficPolicy : svc.internalTrafficPolicy;
      // Filters spelled out: spreads cost about 3 µs a port on a first sync.
      const filter: EndpointFilter = policy === 'Local' ? { accept: o.isThisNode, family: st.family } : { topology: o.node.topology(), family: st.family };
      const all = o.endpoints.endpointsFor(svc, st.port, filter, serviceKey);
      const eps = o.dialVia ? o.dialVia.usable(all, st.spn) : all;
      const epKey = endpointsKeyOf(eps);
      if (epKey === st.endpointsKey) continue;
      if ((st.endpointsKey === '') !== (epKey === '')) {
        flipped = true;
        this.#unsettled.add(key);
      }
      st.endpointsKey = epKey;
      o.balancer.updateEndpoints(key, eps);
      if (log.isInfoEnabled()) log.info('endpoints changed', { service: key, endpoints: eps.length });
    }
    return flipped;
  }

  /** Opens what failed to open (or, in none mode, waited for endpoints) and holds node ports not held yet. */
  async retryFailed(stopped: () => boolean): Promise<void> {
    const { opener, redirect } = this.#o;
    for (const key of [...this.#unsettled]) {
      if (stopped()) return;
      const st = this.#ports.get(key);
      if (st === undefined) continue;
      if (!st.socket) await opener.open(st);
      else if (opener.needsNodePortRetry(st)) await opener.retryNodePort(st);
      // none mode closes a listener left without endpoints (closeUnserved): not settled yet.
      if (st.socket && !opener.needsNodePortRetry(st) && (redirect || !opener.isUnserved(st))) this.#unsettled.delete(key);
    }
  }

  /** none mode: closes the listeners of ports that lost their last endpoint (reopened by retryFailed). */
  async closeUnserved(): Promise<void> {
    for (const key of [...this.#unsettled]) {
      const st = this.#ports.get(key);
      if (st !== undefined && this.#o.opener.isUnserved(st)) await this.#o.opener.closeUnserved(st);
    }
  }
}
