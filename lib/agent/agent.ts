import type { LoadBalancer } from '../balancer/load-balancer.js';
import { RoundRobinBalancer } from '../balancer/round-robin-balancer.js';
import type { Config } from '../config/config.js';
import { formatHostPort } from '../errors.js';
import { logger } from '../log.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import { EndpointsCache } from '../model/endpoints-cache.js';
import { isProxied } from '../model/service.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import { servicePortName } from '../model/service-port-name.js';
import type { ServiceKey, ServicePortName } from '../model/service-port-name.js';
import { EndpointBackoff } from '../proxy/endpoint-backoff.js';
import type { ListenAddress, ProxySocket } from '../proxy/proxy-socket.js';
import type { ProxyStats } from '../proxy/proxy-stats.js';
import { TcpProxySocket } from '../proxy/tcp/tcp-proxy-socket.js';
import { UdpProxySocket } from '../proxy/udp/udp-proxy-socket.js';
import { ServiceChangeTracker } from '../source/service-change-tracker.js';
import type { ServiceSource, ServiceSourceHandler } from '../source/service-source.js';
import { directListenAddresses } from './listen-addresses.js';
import { LocalAddresses } from './local-addresses.js';
import { SyncRunner } from './sync-runner.js';

export type AgentConfig = Pick<Config, 'bindAddress' | 'udpTimeoutMs' | 'udpMaxSessions' | 'syncPeriodMs' | 'minSyncPeriodMs'>;

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly source: ServiceSource;
  readonly balancer?: LoadBalancer;
}

/** What the agent does for one service port, for status views and tests. */
export interface PortStatus {
  readonly spn: ServicePortName;
  readonly protocol: string;
  /** Bound listeners (empty while the port failed to open). */
  readonly listening: readonly ListenAddress[];
  readonly endpoints: readonly string[];
  /** Why the listener is not open, if it is not. */
  readonly error: string | undefined;
  readonly stats: ProxyStats | undefined;
}

interface PortState {
  readonly spn: ServicePortName;
  service: ServiceSpec;
  port: ServicePortSpec;
  /** Everything that, when changed, needs a new listener. */
  readonly signature: string;
  readonly listen: readonly ListenAddress[];
  socket: ProxySocket | undefined;
  error: Error | undefined;
  /** The endpoint keys last given to the balancer, joined: skips no-op updates. */
  endpointsKey: string;
}

const log = logger('agent');

/**
 * Ties a ServiceSource to listeners and the balancer. Service changes are coalesced and applied by
 * one serialized, rate-bounded sync loop; endpoint changes go to the balancer at once, without
 * touching listeners. Nothing is applied before the source has delivered its initial state.
 */
export class Agent implements ServiceSourceHandler {
  readonly #config: AgentConfig;
  readonly #source: ServiceSource;
  readonly #balancer: LoadBalancer;
  readonly #backoff = new EndpointBackoff();
  readonly #tracker = new ServiceChangeTracker();
  readonly #endpoints = new EndpointsCache();
  readonly #local = new LocalAddresses();
  readonly #runner: SyncRunner;
  /** Services as last applied. */
  readonly #services = new Map<ServiceKey, ServiceSpec>();
  readonly #ports = new Map<ServicePortName, PortState>();
  readonly #portsByService = new Map<ServiceKey, Set<ServicePortName>>();
  /** Closed listeners whose TCP connections are still finishing: destroy() must reach them too. */
  readonly #retired = new Set<ProxySocket>();
  #synced = false;
  #closed = false;

  constructor(options: AgentOptions) {
    this.#config = options.config;
    this.#source = options.source;
    this.#balancer = options.balancer ?? new RoundRobinBalancer();
    this.#runner = new SyncRunner({
      fn: () => this.#sync(),
      minIntervalMs: this.#config.minSyncPeriodMs,
      maxIntervalMs: this.#config.syncPeriodMs,
    });
  }

  /** Loads the source's initial state, applies it, and keeps following changes. */
  async start(): Promise<void> {
    log.info('starting', { source: this.#source.kind });
    await this.#source.start(this);
    await this.#runner.idle();
    this.#runner.start();
    log.info('started', { servicePorts: this.#ports.size });
  }

  onServiceChange(key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    if (this.#tracker.update(key, previous, current) && this.#synced) this.#runner.run();
  }

  onEndpointSliceChange(key: string, _previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    for (const svc of this.#endpoints.update(key, current)) this.#pushEndpoints(svc);
  }

  onSynced(): void {
    this.#synced = true;
    this.#runner.run();
  }

  /** Resolves once every change seen so far has been applied. */
  async settled(): Promise<void> {
    await this.#runner.idle();
  }

  status(): PortStatus[] {
    return [...this.#ports.values()].map((st) => ({
      spn: st.spn,
      protocol: st.port.protocol,
      listening: st.socket?.addresses() ?? [],
      endpoints: this.#balancer.endpoints(st.spn).map((e) => e.key),
      error: st.error?.message,
      stats: st.socket?.stats,
    }));
  }

  /** Stops following the source and closes every listener; TCP connections in flight are left to finish. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#runner.close();
    await this.#source.close();
    await Promise.all([...this.#ports.values()].map((st) => st.socket?.close()));
    log.info('closed listeners', { servicePorts: this.#ports.size });
  }

  /** Stops at once: every listener, connection and UDP session. Idempotent. */
  destroy(): void {
    this.#closed = true;
    this.#runner.destroy();
    this.#source.destroy();
    for (const st of this.#ports.values()) st.socket?.destroy();
    for (const socket of this.#retired) socket.destroy();
    this.#retired.clear();
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    this.#local.refresh();
    for (const [key, change] of this.#tracker.drain()) await this.#applyService(key, change.current);
    await this.#retryFailedPorts();
    for (const socket of this.#retired) if (socket.stats.active === 0) this.#retired.delete(socket);
    this.#balancer.cleanupStaleStickySessions();
  }

  async #applyService(key: ServiceKey, current: ServiceSpec | undefined): Promise<void> {
    const wanted = new Map<ServicePortName, { port: ServicePortSpec; listen: ListenAddress[]; signature: string }>();
    if (current && isProxied(current)) {
      this.#services.set(key, current);
      for (const port of current.ports) {
        const spn = servicePortName(current.namespace, current.name, port.name);
        if (port.protocol !== 'TCP' && port.protocol !== 'UDP') {
          log.warn('skipped service port: protocol not supported', { service: spn, protocol: port.protocol });
          continue;
        }
        const listen = directListenAddresses(current, port, this.#config.bindAddress, this.#local);
        wanted.set(spn, { port, listen, signature: JSON.stringify([port.protocol, listen]) });
      }
    } else {
      if (current) log.info('service not proxied', { service: key, reason: current.headless ? 'headless' : current.type === 'ExternalName' ? 'ExternalName' : 'no cluster IP' });
      this.#services.delete(key);
    }

    const names = this.#portsByService.get(key) ?? new Set<ServicePortName>();
    for (const spn of [...names]) {
      const st = this.#ports.get(spn)!;
      const want = wanted.get(spn);
      if (want && want.signature === st.signature) continue;
      await this.#closePort(st);
      names.delete(spn);
      if (!want) this.#balancer.deleteService(spn);
    }
    for (const [spn, want] of wanted) {
      let st = this.#ports.get(spn);
      this.#balancer.newService(spn, { type: current!.sessionAffinity, timeoutSeconds: current!.affinityTimeoutSeconds });
      if (st) {
        st.service = current!;
        st.port = want.port;
        continue;
      }
      st = { spn, service: current!, port: want.port, signature: want.signature, listen: want.listen, socket: undefined, error: undefined, endpointsKey: '' };
      this.#ports.set(spn, st);
      names.add(spn);
      await this.#openPort(st);
    }
    if (names.size > 0) this.#portsByService.set(key, names);
    else this.#portsByService.delete(key);
    this.#pushEndpoints(key);
  }

  async #openPort(st: PortState): Promise<void> {
    const common = { spn: st.spn, listen: st.listen, balancer: this.#balancer, backoff: this.#backoff };
    const socket: ProxySocket =
      st.port.protocol === 'UDP'
        ? new UdpProxySocket({ ...common, idleTimeoutMs: this.#config.udpTimeoutMs, maxSessions: this.#config.udpMaxSessions })
        : new TcpProxySocket(common);
    const addresses = st.listen.map((a) => formatHostPort(a.host, a.port)).join(',');
    try {
      await socket.start();
      st.socket = socket;
      if (st.error) log.info('listener recovered', { service: st.spn, protocol: st.port.protocol, addresses });
      else log.info('opened listener', { service: st.spn, protocol: st.port.protocol, addresses });
      st.error = undefined;
    } catch (err) {
      // Only this service port is affected; it is retried at every sync until it opens.
      if (!st.error || st.error.message !== (err as Error).message) {
        log.error('cannot open listener', { service: st.spn, protocol: st.port.protocol, addresses, error: (err as Error).message });
      }
      st.error = err as Error;
    }
  }

  async #closePort(st: PortState): Promise<void> {
    this.#ports.delete(st.spn);
    if (!st.socket) return;
    await st.socket.close();
    if (st.socket.stats.active > 0) this.#retired.add(st.socket);
    log.info('closed listener', { service: st.spn, protocol: st.port.protocol });
  }

  async #retryFailedPorts(): Promise<void> {
    for (const st of this.#ports.values()) {
      if (!st.socket && !this.#closed) await this.#openPort(st);
    }
  }

  /** Gives the balancer the current endpoints of every port of a service; no listener is touched. */
  #pushEndpoints(key: ServiceKey): void {
    const svc = this.#services.get(key);
    const names = this.#portsByService.get(key);
    if (!svc || !names) return;
    for (const spn of names) {
      const st = this.#ports.get(spn)!;
      const eps = this.#endpoints.endpointsFor(svc, st.port);
      const epKey = eps.map((e) => e.key).join(',');
      if (epKey === st.endpointsKey) continue;
      st.endpointsKey = epKey;
      this.#balancer.updateEndpoints(spn, eps);
      log.info('endpoints changed', { service: spn, endpoints: eps.length });
    }
  }
}
