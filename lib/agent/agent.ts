import diagnosticsChannel from 'node:diagnostics_channel';
import type { LoadBalancer } from '../balancer/load-balancer.js';
import { SchedulingBalancer } from '../balancer/scheduling-balancer.js';
import type { Config } from '../config/config.js';
import { CloseError, ClosedError } from '../errors.js';
import { logger } from '../log.js';
import { serviceKeyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import { EndpointsCache } from '../model/endpoints-cache.js';
import type { NodeSpec } from '../model/node.js';
import type { ServiceSpec } from '../model/service.js';
import type { ProxySocketKey, ServiceKey } from '../model/service-port-name.js';
import type { DescriptorBudget } from '../proxy/descriptor-budget.js';
import { EndpointBackoff } from '../proxy/endpoint-backoff.js';
import type { EndpointConnector } from '../proxy/endpoint-connector.js';
import { KernelPortAllocator } from '../proxy/kernel-port-allocator.js';
import type { PortAllocator } from '../proxy/port-allocator.js';
import type { AddressAssigner } from '../rules/address-assigner.js';
import type { RuleBackend } from '../rules/rule-backend.js';
import { ServiceChangeTracker } from '../source/service-change-tracker.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from '../source/service-source.js';
import { redirectModeName } from '../rules/redirect-mode-name.js';
import { agentHealth, proxierReasons } from './agent-health.js';
import type { AgentHealth, ProxierState } from './agent-health.js';
import { ChangeAccounting } from './change-accounting.js';
import { DialVia } from './dial-via.js';
import { addressesInCidrs } from './host-ips.js';
import { LocalAddresses } from './local-addresses.js';
import { PortOpener } from './port-opener.js';
import { portCountersOf, portListenersOf, portStatusOf } from './port-status.js';
import type { PortCounters, PortListeners, PortStatus } from './port-status.js';
import type { PlanContext } from './portal-plan.js';
import { LocalProxySockets } from '../proxy/proxy-socket-factory.js';
import type { ProxySocketFactory } from '../proxy/proxy-socket-factory.js';
import { RuleSync } from './rule-sync.js';
import { ServiceAddresses } from './service-addresses.js';
import { ServiceHealthChecks } from './service-health-checks.js';
import { ServicePorts } from './service-ports.js';
import { SyncRunner } from './sync-runner.js';
import { countNoLocalEndpoints } from './sync-status.js';
import type { ScopedPort, SyncStatus } from './sync-status.js';
import { ThisNode } from './this-node.js';

export type { AgentHealth } from './agent-health.js';
export type { PortCounters, PortListeners, PortStatus } from './port-status.js';
export { RULES_CHANNEL } from './rule-sync.js';

export type AgentConfig = Pick<Config, 'bindAddress' | 'udpTimeoutMs' | 'udpMaxSessions' | 'syncPeriodMs' | 'minSyncPeriodMs'> & {
  /** --tcp-idle-timeout (ms, 0 = never); a Service's annotation overrides it. Default: none. */
  readonly tcpIdleTimeoutMs?: number;
  readonly nodePortAddresses?: readonly string[];
  /** This node's name: Local traffic policies use only endpoints on it. */
  readonly nodeName?: string;
};

export interface AgentOptions {
  readonly config: AgentConfig;
  readonly source: ServiceSource;
  readonly balancer?: LoadBalancer;
  /** iptables/nftables mode: rules send portals to proxy ports. Without it, listeners bind portals directly. */
  readonly rules?: RuleBackend;
  /** Proxy ports for the rules modes (--proxy-port-range); default: the kernel chooses. */
  readonly allocator?: PortAllocator;
  /** none mode with --assign-service-ips: service IPs are added to an interface first. */
  readonly assigner?: AddressAssigner;
  /** Where listeners and connections live; default: all in this process. */
  readonly sockets?: ProxySocketFactory;
  /** This process's descriptor budget for the data path; default: none (only the kernel limits). */
  readonly budget?: DescriptorBudget;
  /** --dial-via port-forward: endpoints are reached through this (TCP only); default: their IPs. */
  readonly connector?: EndpointConnector;
}

const log = logger('agent');

/** Published after every sync: `{ agent, durationMs, ok, families }`. */
export const SYNC_CHANNEL = diagnosticsChannel.channel('kube-userspace-proxy:sync');

/** How often a drain looks whether the last connection has finished. */
const DRAIN_POLL_MS = 100;

/**
 * Ties a ServiceSource to listeners and the balancer. Service changes are coalesced and applied by
 * one serialized, rate-bounded sync loop; endpoint changes go to the balancer at once, without
 * touching listeners. Nothing is applied before the source has delivered its initial state.
 *
 * Lifecycle: start() once; close() (graceful, the same promise when called again) or destroy()
 * (at once); drain() first to let connections finish. start() after either is a ClosedError.
 */
export class Agent implements ServiceSourceHandler {
  readonly #config: AgentConfig;
  readonly #source: ServiceSource;
  readonly #balancer: LoadBalancer;
  readonly #sockets: ProxySocketFactory;
  readonly #dialVia: DialVia | undefined;
  readonly #rules: RuleSync | undefined;
  readonly #addresses: ServiceAddresses | undefined;
  readonly #tracker = new ServiceChangeTracker();
  readonly #endpoints = new EndpointsCache();
  readonly #local = new LocalAddresses();
  readonly #node: ThisNode;
  readonly #opener: PortOpener;
  readonly #ports: ServicePorts;
  readonly #runner: SyncRunner;
  readonly #accounting = new ChangeAccounting(this);
  /** The health check node ports of LoadBalancer services with externalTrafficPolicy Local. */
  readonly #healthChecks: ServiceHealthChecks;
  #synced = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #draining = false;
  #lastSyncOkMs: number | undefined;
  #syncedAtMs: number | undefined;
  /** The steps close() and drain() share, each run once. */
  #stopped: Promise<void> | undefined;
  #rulesRemoved: Promise<void> | undefined;
  /** What is logged and served on /proxyMode-like views: `none`, `iptables`, ... */
  readonly redirectMode: string;

  constructor(options: AgentOptions) {
    this.#config = options.config;
    this.#source = options.source;
    this.#balancer = options.balancer ?? new SchedulingBalancer();
    this.#sockets = options.sockets ?? new LocalProxySockets();
    this.#dialVia = options.connector ? new DialVia(options.connector) : undefined;
    this.redirectMode = redirectModeName(options.rules, options.assigner);
    this.#node = new ThisNode(this.#config.nodeName ?? '');
    const redirect = options.rules !== undefined;
    this.#rules = options.rules
      ? new RuleSync({ backend: options.rules, balancer: this.#balancer, bindAddress: this.#config.bindAddress, nodePortIPs: () => this.#nodePortIPs(), owner: this })
      : undefined;
    this.#addresses = options.assigner ? new ServiceAddresses(options.assigner) : undefined;
    this.#opener = new PortOpener({
      redirect,
      allocator: options.allocator ?? new KernelPortAllocator(),
      sockets: this.#sockets,
      balancer: this.#balancer,
      backoff: new EndpointBackoff(),
      budget: options.budget,
      dialVia: this.#dialVia,
      udpTimeoutMs: this.#config.udpTimeoutMs,
      udpMaxSessions: this.#config.udpMaxSessions,
      tcpIdleTimeoutMs: this.#config.tcpIdleTimeoutMs,
    });
    this.#ports = new ServicePorts({
      opener: this.#opener,
      balancer: this.#balancer,
      endpoints: this.#endpoints,
      node: this.#node,
      dialVia: this.#dialVia,
      redirect,
      affinityNeedsNewListener: this.#sockets.affinityNeedsNewListener,
      isThisNode: this.#isThisNode,
    });
    this.#runner = new SyncRunner({
      fn: () => this.#sync(),
      minIntervalMs: this.#config.minSyncPeriodMs,
      maxIntervalMs: this.#config.syncPeriodMs,
    });
    this.#healthChecks = new ServiceHealthChecks({ endpoints: this.#endpoints, isLocal: this.#isThisNode, proxyHealthy: () => proxierReasons(this.#proxierState(), Date.now()).length === 0 });
  }

  /** Loads the source's initial state, applies it, and keeps following changes. Rejects with ClosedError after close() or destroy(). */
  async start(): Promise<void> {
    if (this.#closed) throw new ClosedError('agent');
    log.info('starting', { source: this.#source.kind });
    await this.#sockets.start();
    // Rules and addresses first: their start removes what a crashed run left behind.
    await this.#rules?.start();
    await this.#addresses?.start();
    await this.#source.start(this);
    await this.#runner.idle();
    this.#runner.start();
    log.info('started', { servicePorts: this.#ports.size });
  }

  onServiceChange(key: ServiceKey, previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    this.#accounting.serviceChange();
    if (this.#tracker.update(key, previous, current) && this.#synced) this.#runner.run();
  }

  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    let flipped = false;
    for (const svc of this.#endpoints.update(key, current)) flipped = this.#ports.pushEndpoints(svc) || flipped;
    // A port that gained its first endpoint or lost its last: the refusal (reject rule, or no
    // listener in none mode) follows in the next sync, asked for now.
    if (flipped && this.#synced) this.#runner.run();
    // In force now unless its Service is not applied yet (held then until the sync that applies it).
    const owner = (current ?? previous) ? serviceKeyOfSlice((current ?? previous)!) : '';
    this.#accounting.endpointSliceChange(previous, current, this.#synced && this.#ports.services.has(owner) && this.#tracker.get(owner) === undefined);
  }

  onSynced(): void {
    this.#synced = true;
    this.#syncedAtMs = Date.now();
    this.#runner.run();
  }

  /** A new zone re-routes every service at once; eligibility is read by health(). */
  onNodeChange(node: NodeSpec | undefined): void {
    if (this.#node.update(node)) for (const key of this.#ports.serviceKeys()) this.#ports.pushEndpoints(key);
  }

  /** Resolves once every change seen so far has been applied. */
  async settled(): Promise<void> {
    await this.#runner.idle();
  }

  status(): PortStatus[] {
    return [...this.#ports.values()].map((st) => portStatusOf(st, this.#balancer));
  }

  /** status() without the addresses, endpoints and portals: what a /metrics scrape reads of every port. */
  portCounters(): PortCounters[] {
    return [...this.#ports.values()].map(portCountersOf);
  }

  /** The listeners of every port, addresses read only when asked for: what the endpoint filter reads (see ownListenersOf). */
  listeners(): PortListeners[] {
    return [...this.#ports.values()].map(portListenersOf);
  }

  /** Counts for metrics: proxied services, service ports (listeners) and distinct endpoints. */
  counts(): { services: number; servicePorts: number; endpoints: number } {
    const endpoints = new Set<string>();
    for (const st of this.#ports.values()) for (const e of this.#balancer.endpoints(st.key)) endpoints.add(e.key);
    return { services: this.#ports.services.size, servicePorts: this.#ports.size, endpoints: endpoints.size };
  }

  /** What kube-proxy's sync metrics read: change counts, the last sync request, families, Local policies without local endpoints. */
  syncStatus(): SyncStatus {
    const ports: ScopedPort[] = [];
    for (const st of this.#ports.values()) {
      // Only a Local traffic policy is counted, and a /metrics scrape with 10,000 service ports
      // spent most of its time reading the endpoints of every port; merging a port's slices is
      // only needed where it has no endpoint of its own.
      if (st.service.internalTrafficPolicy !== 'Local' && st.service.externalTrafficPolicy !== 'Local') continue;
      const endpoints = this.#balancer.endpoints(st.key).length;
      ports.push({ service: st.service, port: st.port, scope: st.scope, endpoints, clusterEndpoints: endpoints > 0 ? endpoints : this.#endpoints.endpointsFor(st.service, st.port).length });
    }
    return {
      ...this.#accounting.counts(this.#tracker.size),
      lastQueuedMs: this.#runner.lastQueuedMs,
      families: this.#ports.families.families(),
      noLocalEndpoints: countNoLocalEndpoints(ports),
    };
  }

  /** Brings the stats in status() up to date where other processes count them. */
  async refreshStats(): Promise<void> {
    await this.#sockets.refreshStats();
  }

  /**
   * The rules of one socket (`spn` as in status()), rendered alone by the backend exactly as
   * --dry-run renders them; undefined in none mode or while the port has no proxy port. For the
   * live page's packet path.
   */
  renderRules(spn: string): string | undefined {
    const st = this.#ports.get(spn as ProxySocketKey);
    return st === undefined ? undefined : this.#rules?.render(st);
  }

  sourceHealth(): SourceHealth | undefined {
    return this.#source.health?.();
  }

  /** See agentHealth(): the last sync, the rules, the listeners, the source, draining and this node. */
  health(now = Date.now()): AgentHealth {
    return agentHealth(this.#proxierState(), now);
  }

  /**
   * Graceful stop: stops following the source and accepting connections, removes the rules (the
   * kernel keeps translating established flows), waits up to gracePeriodMs for established
   * connections to finish. Health reports draining meanwhile. close() afterwards closes the rest,
   * without repeating these steps.
   */
  async drain(gracePeriodMs: number): Promise<void> {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    log.info('draining', { connections: this.#activeConnections(), gracePeriodMs });
    await this.#stopListening();
    await this.#removeRules().catch((err: unknown) => log.error('cannot remove rules', { error: (err as Error).message }));
    const deadline = Date.now() + gracePeriodMs;
    await this.#sockets.refreshStats();
    while (this.#activeConnections() > 0 && Date.now() < deadline && this.#draining) {
      // Connections end on their own: there is no event for "the last one finished" across workers.
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
      await this.#sockets.refreshStats();
    }
    log.info('drained', { connectionsLeft: this.#activeConnections() });
  }

  /**
   * Stops following the source and closes every listener, then removes the rules and service
   * addresses; TCP connections in flight are left to finish. Every failure is collected; the
   * returned promise is the same at every call.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    if (this.#closed) return (this.#closing = Promise.resolve()); // destroyed: nothing is left to close gracefully
    this.#closed = true;
    this.#closing = this.#close();
    return this.#closing;
  }

  /** Stops at once: every listener, connection and UDP session. Idempotent. */
  destroy(): void {
    this.#closed = true;
    this.#runner.destroy();
    this.#source.destroy();
    for (const st of this.#ports.values()) {
      st.socket?.destroy();
      st.claim?.close();
    }
    this.#opener.destroy();
    this.#healthChecks.destroy();
    this.#sockets.destroy();
    this.#dialVia?.connector.close();
  }

  async #close(): Promise<void> {
    await this.#stopListening();
    for (const st of this.#ports.values()) st.claim?.close();
    await this.#healthChecks.close();
    await this.#sockets.close();
    log.info('closed listeners', { servicePorts: this.#ports.size });
    // Collect every failure: one that cannot be removed must not keep the others in place.
    const failures: unknown[] = [];
    await this.#removeRules().catch((err: unknown) => failures.push(err));
    await this.#addresses?.close().catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw new CloseError('agent', failures);
  }

  /** The first steps of drain and close: no more syncs, no more source events, no new connections. */
  #stopListening(): Promise<void> {
    this.#stopped ??= (async () => {
      await this.#runner.close();
      await this.#source.close();
      await Promise.all([...this.#ports.values()].map((st) => st.socket?.close()));
    })();
    return this.#stopped;
  }

  #removeRules(): Promise<void> {
    this.#rulesRemoved ??= this.#rules?.close() ?? Promise.resolve();
    return this.#rulesRemoved;
  }

  async #sync(): Promise<void> {
    if (this.#closed || this.#draining) return;
    const started = performance.now();
    let ok = false;
    try {
      await this.#syncProxyRules();
      ok = this.#rules?.error === undefined;
      if (ok) this.#lastSyncOkMs = Date.now();
      this.#accounting.synced();
    } finally {
      if (SYNC_CHANNEL.hasSubscribers) SYNC_CHANNEL.publish({ agent: this, durationMs: performance.now() - started, ok, families: this.#ports.families.families() });
    }
  }

  /**
   * One sync, as kube-proxy's syncProxyRules: apply the coalesced Service changes (merge and
   * unmerge each Service's ports), retry what failed, then bring everything that follows the
   * listeners (health check ports, addresses, rules) up to date, and drop stale affinity.
   */
  async #syncProxyRules(): Promise<void> {
    const changes = this.#tracker.drain();
    // Add the new services' IPs before their listeners bind them; stale ones go after.
    await this.#addresses?.addFor(this.#ports.services.values(), changes.values());
    this.#local.refresh();
    const ctx = this.#planContext();
    for (const [serviceKey, change] of changes) await this.#ports.mergeService(serviceKey, change.current, ctx);
    await this.#ports.retryFailed(() => this.#closed);
    await this.#healthChecks.sync(this.#ports.healthChecked.values(), ctx.nodePortIPs);
    if (!this.#rules) await this.#ports.closeUnserved();
    await this.#addresses?.sync(this.#ports.services.values());
    await this.#rules?.sync(this.#ports.values(), () => this.#ports.families.families());
    this.#opener.forgetFinished();
    this.#balancer.cleanupStaleStickySessions();
  }

  #planContext(): PlanContext {
    return { bindAddress: this.#config.bindAddress, local: this.#local, nodePortIPs: this.#nodePortIPs(), ipv6: this.#local.ipv6 };
  }

  #nodePortIPs(): string[] | undefined {
    const cidrs = this.#config.nodePortAddresses ?? [];
    return cidrs.length > 0 ? addressesInCidrs(cidrs) : undefined;
  }

  #proxierState(): ProxierState {
    let failedPorts = 0;
    for (const st of this.#ports.values()) if (st.error || st.claimError) failedPorts++;
    return {
      syncPeriodMs: this.#config.syncPeriodMs,
      draining: this.#draining,
      lastSyncOkMs: this.#lastSyncOkMs,
      syncedAtMs: this.#syncedAtMs,
      rulesError: this.#rules?.error,
      failedPorts,
      source: this.sourceHealth(),
      node: this.#node.eligibility(),
    };
  }

  #activeConnections(): number {
    let n = this.#opener.retiredConnections();
    for (const st of this.#ports.values()) n += st.socket?.stats.active ?? 0;
    return n;
  }

  readonly #isThisNode = (nodeName: string): boolean => nodeName === this.#config.nodeName;
}
