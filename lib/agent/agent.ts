import diagnosticsChannel from 'node:diagnostics_channel';
import type { AffinityPolicy, LoadBalancer, SchedulingPolicy } from '../balancer/load-balancer.js';
import { SchedulingBalancer } from '../balancer/scheduling-balancer.js';
import { DEFAULT_SCHEDULER } from '../model/scheduler-annotation.js';
import type { SchedulerName } from '../model/scheduler-annotation.js';
import type { Config } from '../config/config.js';
import { formatHostPort, PortConflictError } from '../errors.js';
import { logger } from '../log.js';
import { serviceKeyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { IPFamily } from '../model/ip-address.js';
import { EndpointsCache } from '../model/endpoints-cache.js';
import type { NodeSpec } from '../model/node.js';
import { isProxied, proxyProtocolOf } from '../model/service.js';
import type { DescriptorBudget } from '../proxy/descriptor-budget.js';
import type { ServicePortSpec, ServiceSpec } from '../model/service.js';
import { servicePortName } from '../model/service-port-name.js';
import type { ServiceKey, ServicePortName } from '../model/service-port-name.js';
import { EndpointBackoff } from '../proxy/endpoint-backoff.js';
import type { ListenAddress, ProxySocket } from '../proxy/proxy-socket.js';
import type { TcpConnectionPolicy } from '../proxy/tcp/connection-policy.js';
import type { ProxyStats } from '../proxy/proxy-stats.js';
import { ServiceChangeTracker } from '../source/service-change-tracker.js';
import type { ServiceSource, ServiceSourceHandler, SourceHealth } from '../source/service-source.js';
import type { PortAllocator } from '../proxy/port-allocator.js';
import { KernelPortAllocator } from '../proxy/kernel-port-allocator.js';
import type { AddressAssigner } from '../rules/address-assigner.js';
import type { RuleBackend, RuleContext, ServicePortRules } from '../rules/rule-backend.js';
import { addressesInCidrs, hostIPs } from './host-ips.js';
import { LocalAddresses } from './local-addresses.js';
import { claimNodePort } from './node-port-claim.js';
import type { NodePortClaim } from './node-port-claim.js';
import { directPlan, groupKey, groupsOf, portalsOf, redirectPlan, serviceIPs } from './portal-plan.js';
import type { PlanContext, PortalScope } from './portal-plan.js';
import { LocalProxySockets } from '../proxy/proxy-socket-factory.js';
import { ServiceHealthChecks } from './service-health-checks.js';
import type { ProxySocketFactory } from '../proxy/proxy-socket-factory.js';
import { SyncRunner } from './sync-runner.js';
import { ChangeAccounting } from './change-accounting.js';
import { countNoLocalEndpoints, servedFamilies } from './sync-status.js';
import type { SyncStatus } from './sync-status.js';
import { ThisNode } from './this-node.js';
import { DialVia } from './dial-via.js';
import type { EndpointConnector } from '../proxy/endpoint-connector.js';

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

/** What the agent does for one service port, for status views and tests. */
export interface PortStatus {
  readonly spn: ServicePortName;
  readonly protocol: string;
  /** Bound listeners (empty while the port failed to open). */
  readonly listening: readonly ListenAddress[];
  readonly endpoints: readonly string[];
  /** Portals captured by rules (rules modes) or served directly (none mode). */
  readonly portals: readonly string[];
  readonly nodePort: number;
  /** The local listener port the rules send portals to (rules modes); 0 in none mode. */
  readonly proxyPort: number;
  readonly scheduler: SchedulerName;
  readonly affinity: AffinityPolicy;
  /** Why the listener (or the node port) is not open, if it is not. */
  readonly error: string | undefined;
  readonly stats: ProxyStats | undefined;
}

interface PortState {
  /** The key of this socket in the agent and the balancer: the ServicePortName, plus the scope when split. */
  readonly key: ServicePortName;
  readonly spn: ServicePortName;
  readonly scope: PortalScope;
  /** The one family of a dual-stack service port's socket; undefined: every family. */
  readonly family: IPFamily | undefined;
  service: ServiceSpec;
  port: ServicePortSpec;
  /** Everything that, when changed, needs a new listener. */
  readonly signature: string;
  readonly listen: readonly ListenAddress[];
  socket: ProxySocket | undefined;
  error: Error | undefined;
  /** Rules modes: the allocated proxy port (0 until opened) and the held node port. */
  proxyPort: number;
  claim: NodePortClaim | undefined;
  claimError: Error | undefined;
  /** The endpoint keys last given to the balancer, joined: skips no-op updates. */
  endpointsKey: string;
}

const log = logger('agent');

/** Published after every sync: `{ agent, durationMs, ok, families }`. */
export const SYNC_CHANNEL = diagnosticsChannel.channel('kube-userspace-proxy:sync');
/** Published after every rules apply: `{ agent, ok, mode, error? }`. */
export const RULES_CHANNEL = diagnosticsChannel.channel('kube-userspace-proxy:rules');

export interface AgentHealth {
  readonly healthy: boolean;
  /** Why not healthy, one phrase each. */
  readonly reasons: readonly string[];
  /** When the last successful sync finished (ms since the epoch). */
  readonly lastUpdatedMs: number | undefined;
  readonly draining: boolean;
  /** false while this node is being deleted or tainted for deletion (kube-proxy's nodeEligible); undefined means true. */
  readonly nodeEligible?: boolean;
  /**
   * false once the sync loop has not completed a successful sync for two sync periods after the
   * initial state arrived: kube-proxy's /livez condition. undefined means true.
   */
  readonly syncHealthy?: boolean;
}

/**
 * Ties a ServiceSource to listeners and the balancer. Service changes are coalesced and applied by
 * one serialized, rate-bounded sync loop; endpoint changes go to the balancer at once, without
 * touching listeners. Nothing is applied before the source has delivered its initial state.
 */
export class Agent implements ServiceSourceHandler {
  readonly #config: AgentConfig;
  readonly #budget: DescriptorBudget | undefined;
  readonly #source: ServiceSource;
  readonly #balancer: LoadBalancer;
  readonly #rules: RuleBackend | undefined;
  readonly #allocator: PortAllocator;
  readonly #assigner: AddressAssigner | undefined;
  readonly #sockets: ProxySocketFactory;
  readonly #dialVia: DialVia | undefined;
  /** The rules last applied, serialized: a sync that changes nothing runs no command. */
  #appliedRules: string | undefined;
  readonly #backoff = new EndpointBackoff();
  readonly #tracker = new ServiceChangeTracker();
  readonly #endpoints = new EndpointsCache();
  readonly #local = new LocalAddresses();
  readonly #runner: SyncRunner;
  readonly #accounting = new ChangeAccounting(this);
  /** Services as last applied. */
  readonly #services = new Map<ServiceKey, ServiceSpec>();
  readonly #ports = new Map<ServicePortName, PortState>();
  readonly #portsByService = new Map<ServiceKey, Set<ServicePortName>>();
  /** Closed listeners whose TCP connections are still finishing: destroy() must reach them too. */
  readonly #retired = new Set<ProxySocket>();
  /** The health check node ports of LoadBalancer services with externalTrafficPolicy Local. */
  readonly #healthChecks: ServiceHealthChecks;
  #synced = false;
  #closed = false;
  #draining = false;
  #lastSyncOkMs: number | undefined;
  #syncedAtMs: number | undefined;
  readonly #node: ThisNode;
  #rulesError: string | undefined;
  /** What is logged and served on /proxyMode-like views: `none`, `iptables`, ... */
  readonly redirectMode: string;

  constructor(options: AgentOptions) {
    this.#config = options.config;
    this.#source = options.source;
    this.#balancer = options.balancer ?? new SchedulingBalancer();
    this.#rules = options.rules;
    this.#allocator = options.allocator ?? new KernelPortAllocator();
    this.#assigner = options.assigner;
    this.#sockets = options.sockets ?? new LocalProxySockets();
    this.#budget = options.budget;
    this.#dialVia = options.connector ? new DialVia(options.connector) : undefined;
    this.redirectMode = options.rules?.mode ?? (options.assigner ? 'none --assign-service-ips' : 'none');
    this.#node = new ThisNode(this.#config.nodeName ?? '');
    this.#runner = new SyncRunner({
      fn: () => this.#sync(),
      minIntervalMs: this.#config.minSyncPeriodMs,
      maxIntervalMs: this.#config.syncPeriodMs,
    });
    this.#healthChecks = new ServiceHealthChecks({ endpoints: this.#endpoints, isLocal: this.#isThisNode, proxyHealthy: () => this.#proxierReasons(Date.now()).length === 0 });
  }

  /** Loads the source's initial state, applies it, and keeps following changes. */
  async start(): Promise<void> {
    log.info('starting', { source: this.#source.kind });
    await this.#sockets.start();
    // Rules and addresses first: their start removes what a crashed run left behind.
    await this.#rules?.start();
    await this.#assigner?.start();
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
    for (const svc of this.#endpoints.update(key, current)) flipped = this.#pushEndpoints(svc) || flipped;
    // A port that gained its first endpoint or lost its last: the refusal (reject rule, or no
    // listener in none mode) follows in the next sync, asked for now.
    if (flipped && this.#synced) this.#runner.run();
    // In force now unless its Service is not applied yet (held then until the sync that applies it).
    const owner = current ?? previous ? serviceKeyOfSlice((current ?? previous)!) : '';
    this.#accounting.endpointSliceChange(previous, current, this.#synced && this.#services.has(owner) && this.#tracker.get(owner) === undefined);
  }

  onSynced(): void {
    this.#synced = true;
    this.#syncedAtMs = Date.now();
    this.#runner.run();
  }

  /** A new zone re-routes every service at once; eligibility is read by health(). */
  onNodeChange(node: NodeSpec | undefined): void {
    if (this.#node.update(node)) for (const key of this.#portsByService.keys()) this.#pushEndpoints(key);
  }

  /** Resolves once every change seen so far has been applied. */
  async settled(): Promise<void> {
    await this.#runner.idle();
  }

  status(): PortStatus[] {
    return [...this.#ports.values()].map((st) => ({
      spn: st.key,
      protocol: st.port.protocol,
      listening: st.socket?.addresses() ?? [],
      endpoints: this.#balancer.endpoints(st.key).map((e) => e.key),
      portals: portalsOf(st.service, st.port, st.scope, st.family).map((p) => formatHostPort(p.ip, p.port)),
      nodePort: st.port.nodePort,
      proxyPort: st.proxyPort,
      scheduler: st.service.scheduler ?? DEFAULT_SCHEDULER,
      affinity: { type: st.service.sessionAffinity, timeoutSeconds: st.service.affinityTimeoutSeconds },
      error: st.error?.message ?? st.claimError?.message,
      stats: st.socket?.stats,
    }));
  }

  /** Counts for metrics: proxied services, service ports (listeners) and distinct endpoints. */
  counts(): { services: number; servicePorts: number; endpoints: number } {
    const endpoints = new Set<string>();
    for (const st of this.#ports.values()) for (const e of this.#balancer.endpoints(st.key)) endpoints.add(e.key);
    return { services: this.#services.size, servicePorts: this.#ports.size, endpoints: endpoints.size };
  }

  /** What kube-proxy's sync metrics read: change counts, the last sync request, families, Local policies without local endpoints. */
  syncStatus(): SyncStatus {
    const ports = [...this.#ports.values()].map((st) => ({
      service: st.service,
      port: st.port,
      scope: st.scope,
      endpoints: this.#balancer.endpoints(st.key).length,
      clusterEndpoints: this.#endpoints.endpointsFor(st.service, st.port).length,
    }));
    return {
      ...this.#accounting.counts(this.#tracker.size),
      lastQueuedMs: this.#runner.lastQueuedMs,
      families: servedFamilies(this.#services.values()),
      noLocalEndpoints: countNoLocalEndpoints(ports),
    };
  }

  /** Brings the stats in status() up to date where other processes count them. */
  async refreshStats(): Promise<void> {
    await this.#sockets.refreshStats();
  }

  /**
   * The rules of one service port (`spn` as in status()), rendered alone by the backend exactly as
   * --dry-run renders them; undefined in none mode or while the port has no proxy port. For the
   * live page's packet path.
   */
  renderRules(spn: string): string | undefined {
    const st = this.#ports.get(spn as ServicePortName);
    const rules = st === undefined ? undefined : this.#portRules(st);
    if (this.#rules === undefined || rules === undefined) return undefined;
    return this.#rules.render([rules], this.#ruleContext());
  }

  sourceHealth(): SourceHealth | undefined {
    return this.#source.health?.();
  }

  /**
   * Healthy when the last sync succeeded and is recent, the rules applied, every listener is open,
   * the source is fresh, the agent is not draining, and this node is not being deleted (kube-proxy's
   * nodeEligible). (The legacy proxier always said 200.)
   */
  health(now = Date.now()): AgentHealth {
    const reasons = this.#proxierReasons(now);
    const staleAfter = 2 * this.#config.syncPeriodMs;
    const node = this.#node.eligibility();
    if (!node.eligible) reasons.push(node.reason!);
    // A draining agent has stopped syncing on purpose.
    const lastProgressMs = this.#lastSyncOkMs ?? this.#syncedAtMs;
    const syncHealthy = this.#draining || lastProgressMs === undefined || now - lastProgressMs <= staleAfter;
    return { healthy: reasons.length === 0, reasons, lastUpdatedMs: this.#lastSyncOkMs, draining: this.#draining, nodeEligible: node.eligible, syncHealthy };
  }

  /**
   * Why the proxy itself is unhealthy, node eligibility aside: kube-proxy's service health checks
   * (serviceProxyHealthy) read this part only.
   */
  #proxierReasons(now: number): string[] {
    const reasons: string[] = [];
    const staleAfter = 2 * this.#config.syncPeriodMs;
    if (this.#draining) reasons.push('draining');
    if (this.#lastSyncOkMs === undefined) reasons.push('no sync yet');
    else if (now - this.#lastSyncOkMs > staleAfter) reasons.push(`last successful sync ${Math.round((now - this.#lastSyncOkMs) / 1000)}s ago`);
    if (this.#rulesError !== undefined) reasons.push(`rules failed to apply: ${this.#rulesError}`);
    const failed = [...this.#ports.values()].filter((st) => st.error || st.claimError).length;
    if (failed > 0) reasons.push(`${failed} listener${failed === 1 ? '' : 's'} failed to open`);
    const source = this.sourceHealth();
    if (source && now - source.lastSuccessMs > staleAfter) {
      reasons.push(`service source stale: no successful contact for ${Math.round((now - source.lastSuccessMs) / 1000)}s${source.lastError ? ` (${source.lastError})` : ''}`);
    }
    return reasons;
  }

  /**
   * Graceful stop: stops following the source and accepting connections, removes the rules (the
   * kernel keeps translating established flows), waits up to gracePeriodMs for established
   * connections to finish, then closes what is left. Health reports draining meanwhile.
   */
  async drain(gracePeriodMs: number): Promise<void> {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    const active = (): number => [...this.#ports.values()].reduce((n, st) => n + (st.socket?.stats.active ?? 0), 0) + [...this.#retired].reduce((n, s) => n + s.stats.active, 0);
    log.info('draining', { connections: active(), gracePeriodMs });
    await this.#runner.close();
    await this.#source.close();
    await Promise.all([...this.#ports.values()].map((st) => st.socket?.close()));
    await this.#rules?.close().catch((err: unknown) => log.error('cannot remove rules', { error: (err as Error).message }));
    const deadline = Date.now() + gracePeriodMs;
    await this.#sockets.refreshStats();
    while (active() > 0 && Date.now() < deadline && this.#draining) {
      await new Promise((r) => setTimeout(r, 100));
      await this.#sockets.refreshStats();
    }
    log.info('drained', { connectionsLeft: active() });
  }

  /** Stops following the source and closes every listener; TCP connections in flight are left to finish. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#runner.close();
    await this.#source.close();
    await Promise.all([...this.#ports.values()].map((st) => st.socket?.close()));
    for (const st of this.#ports.values()) st.claim?.close();
    await this.#healthChecks.close();
    await this.#sockets.close();
    log.info('closed listeners', { servicePorts: this.#ports.size });
    // Collect every failure: one that cannot be removed must not keep the others in place.
    const failures: unknown[] = [];
    await this.#rules?.close().catch((err: unknown) => failures.push(err));
    await this.#assigner?.close().catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw new AggregateError(failures, failures.map((f) => (f as Error).message).join('; '));
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
    for (const socket of this.#retired) socket.destroy();
    this.#retired.clear();
    this.#healthChecks.destroy();
    this.#sockets.destroy();
    this.#dialVia?.connector.close();
  }

  async #sync(): Promise<void> {
    if (this.#closed || this.#draining) return;
    const started = performance.now();
    let ok = false;
    try {
      await this.#syncOnce();
      ok = this.#rulesError === undefined;
      if (ok) this.#lastSyncOkMs = Date.now();
      this.#accounting.synced();
    } finally {
      if (SYNC_CHANNEL.hasSubscribers) SYNC_CHANNEL.publish({ agent: this, durationMs: performance.now() - started, ok, families: servedFamilies(this.#services.values()) });
    }
  }

  async #syncOnce(): Promise<void> {
    const changes = this.#tracker.drain();
    if (this.#assigner) {
      // Add the new services' IPs before their listeners bind them; stale ones go after.
      const ips = new Set([...this.#services.values()].flatMap(serviceIPs));
      for (const { current } of changes.values()) if (current && isProxied(current)) for (const ip of serviceIPs(current)) ips.add(ip);
      await this.#assignAddresses([...ips]);
    }
    this.#local.refresh();
    const ctx = this.#planContext();
    for (const [key, change] of changes) await this.#applyService(key, change.current, ctx);
    await this.#retryFailedPorts();
    await this.#healthChecks.sync(this.#services.values(), ctx.nodePortIPs);
    if (!this.#rules) await this.#closeUnservedPorts();
    if (this.#assigner) await this.#assignAddresses([...this.#services.values()].flatMap(serviceIPs));
    if (this.#rules) await this.#syncRules();
    for (const socket of this.#retired) if (socket.stats.active === 0) this.#retired.delete(socket);
    this.#balancer.cleanupStaleStickySessions();
  }

  #planContext(): PlanContext {
    const cidrs = this.#config.nodePortAddresses ?? [];
    return { bindAddress: this.#config.bindAddress, local: this.#local, nodePortIPs: cidrs.length > 0 ? addressesInCidrs(cidrs) : undefined, ipv6: this.#local.ipv6 };
  }

  async #assignAddresses(ips: string[]): Promise<void> {
    try {
      await this.#assigner!.sync([...new Set(ips)]);
    } catch (err) {
      log.error('cannot assign service addresses', { error: (err as Error).message });
    }
  }

  /** One open listener's rules; undefined until it has a proxy port. */
  #portRules(st: PortState): ServicePortRules | undefined {
    if (!st.socket || st.proxyPort === 0) return undefined;
    return {
      spn: st.spn,
      protocol: st.port.protocol as 'TCP' | 'UDP',
      portals: portalsOf(st.service, st.port, st.scope, st.family),
      nodePort: st.claim ? st.port.nodePort : 0,
      proxyPort: st.proxyPort,
      ...(st.family ? { family: st.family } : {}),
      ...(this.#balancer.endpoints(st.key).length === 0 ? { noEndpoints: true } : {}),
    };
  }

  #ruleContext(): RuleContext {
    const hosts = hostIPs(this.#config.bindAddress);
    return { bindAddress: this.#config.bindAddress, hostIPv4: hosts.v4, hostIPv6: hosts.v6, nodePortIPs: this.#planContext().nodePortIPs };
  }

  /** Makes the installed rules match the open listeners; retried at the next sync on failure. */
  async #syncRules(): Promise<void> {
    const rules: ServicePortRules[] = [];
    for (const st of this.#ports.values()) {
      const r = this.#portRules(st);
      if (r !== undefined) rules.push(r);
    }
    const ctx = this.#ruleContext();
    const text = JSON.stringify([rules, ctx]);
    if (text === this.#appliedRules) return;
    try {
      await this.#rules!.sync(rules, ctx);
      this.#appliedRules = text;
      this.#rulesError = undefined;
      log.info('rules synced', { mode: this.#rules!.mode, servicePorts: rules.length });
      if (RULES_CHANNEL.hasSubscribers) RULES_CHANNEL.publish({ agent: this, ok: true, mode: this.#rules!.mode });
    } catch (err) {
      this.#appliedRules = undefined;
      this.#rulesError = (err as Error).message;
      log.error('cannot apply rules', { mode: this.#rules!.mode, error: (err as Error).message });
      if (RULES_CHANNEL.hasSubscribers) RULES_CHANNEL.publish({ agent: this, ok: false, mode: this.#rules!.mode, error: this.#rulesError, families: servedFamilies(this.#services.values()) });
    }
  }

  async #applyService(key: ServiceKey, current: ServiceSpec | undefined, ctx: PlanContext): Promise<void> {
    const wanted = new Map<ServicePortName, { spn: ServicePortName; scope: PortalScope; family: IPFamily | undefined; port: ServicePortSpec; listen: readonly ListenAddress[]; signature: string }>();
    if (current && isProxied(current)) {
      this.#services.set(key, current);
      for (const port of current.ports) {
        const spn = servicePortName(current.namespace, current.name, port.name);
        if (port.protocol !== 'TCP' && port.protocol !== 'UDP') {
          log.warn('skipped service port: protocol not supported', { service: spn, protocol: port.protocol });
          continue;
        }
        if (this.#dialVia && !this.#dialVia.servesPort(spn, port.protocol)) continue;
        for (const group of groupsOf(current, port)) {
          const plan = this.#rules ? redirectPlan(current, port, ctx, group) : directPlan(current, port, ctx, group);
          const key = groupKey(spn, group);
          const signature = this.#sockets.affinityNeedsNewListener ? `${plan.signature}|affinity=${current.sessionAffinity}` : plan.signature;
          wanted.set(key, { spn, scope: group.scope, family: group.family, port, listen: plan.listen, signature });
        }
      }
    } else {
      if (current) log.info('service not proxied', { service: key, reason: current.headless ? 'headless' : current.type === 'ExternalName' ? 'ExternalName' : 'no cluster IP' });
      this.#services.delete(key);
    }

    const names = this.#portsByService.get(key) ?? new Set<ServicePortName>();
    for (const key of [...names]) {
      const st = this.#ports.get(key)!;
      const want = wanted.get(key);
      if (want && want.signature === st.signature) continue;
      await this.#closePort(st);
      names.delete(key);
      if (!want) this.#balancer.deleteService(key);
    }
    const opening: PortState[] = [];
    for (const [key, want] of wanted) {
      let st = this.#ports.get(key);
      this.#balancer.newService(key, { type: current!.sessionAffinity, timeoutSeconds: current!.affinityTimeoutSeconds }, schedulingOf(current!));
      if (st) {
        st.service = current!;
        st.port = want.port;
        st.socket?.setIdleTimeout?.(this.#tcpIdleTimeoutOf(current!));
        st.socket?.setConnectionPolicy?.(this.#tcpPolicyOf(current!, want.port));
        continue;
      }
      st = { key, spn: want.spn, scope: want.scope, family: want.family, service: current!, port: want.port, signature: want.signature, listen: want.listen, socket: undefined, error: undefined, endpointsKey: '', proxyPort: 0, claim: undefined, claimError: undefined };
      this.#ports.set(key, st);
      names.add(key);
      opening.push(st);
    }
    if (names.size > 0) this.#portsByService.set(key, names);
    else this.#portsByService.delete(key);
    // Endpoints before listeners: a connection accepted as soon as a port opens (here or in a
    // worker, which learns them in this order) must find them.
    this.#pushEndpoints(key);
    for (const st of opening) await this.#openPort(st);
  }

  /**
   * The Service's annotations for a TCP port's connections. The PROXY header names the cluster
   * IP and port as the destination in the redirect modes: the kernel's original destination
   * (SO_ORIGINAL_DST) is out of Node's reach, and a proxy port stands for every portal of the port.
   */
  #tcpPolicyOf(service: ServiceSpec, port: ServicePortSpec): TcpConnectionPolicy {
    const proxyProtocol = proxyProtocolOf(service, port);
    const maxConnectionAgeMs = service.maxConnectionAgeMs ?? 0;
    const portals = proxyProtocol !== undefined && this.#rules ? service.clusterIPs.map((host) => ({ host, port: port.port })) : undefined;
    return { ...(proxyProtocol !== undefined ? { proxyProtocol } : {}), ...(portals ? { portals } : {}), ...(maxConnectionAgeMs > 0 ? { maxConnectionAgeMs } : {}) };
  }

  /** The Service's annotation, else --tcp-idle-timeout. */
  #tcpIdleTimeoutOf(service: ServiceSpec): number {
    return service.tcpIdleTimeoutMs ?? this.#config.tcpIdleTimeoutMs ?? 0;
  }

  async #openPort(st: PortState): Promise<void> {
    // none mode: a port without endpoints is not listened on, so the kernel refuses its clients
    // (an earlier failure to open is then moot: it is tried again when endpoints come).
    if (!this.#rules && this.#balancer.endpoints(st.key).length === 0) {
      st.error = undefined;
      return;
    }
    // Rules modes draw a proxy port per listener; a port another process holds is skipped.
    for (let attempt = 0; ; attempt++) {
      let listen = st.listen;
      let allocated = 0;
      if (this.#rules) {
        try {
          allocated = this.#allocator.allocateNext();
        } catch (err) {
          this.#failedToOpen(st, err as Error);
          return;
        }
        listen = st.listen.map((a) => ({ host: a.host, port: allocated }));
      }
      const socket = this.#sockets.create({
        spn: st.key,
        protocol: st.port.protocol as 'TCP' | 'UDP',
        listen,
        affinity: st.service.sessionAffinity,
        balancer: this.#balancer,
        backoff: this.#backoff,
        udpTimeoutMs: this.#config.udpTimeoutMs,
        udpMaxSessions: this.#config.udpMaxSessions,
        tcpIdleTimeoutMs: this.#tcpIdleTimeoutOf(st.service),
        tcpPolicy: this.#tcpPolicyOf(st.service, st.port),
        budget: this.#budget,
        ...(this.#dialVia ? { connector: this.#dialVia.connector } : {}),
      });
      try {
        await socket.start();
      } catch (err) {
        if (allocated !== 0 && err instanceof PortConflictError && attempt < 8) continue; // keep that port marked used
        this.#allocator.release(allocated);
        this.#failedToOpen(st, err as Error, listen.map((a) => formatHostPort(a.host, a.port)).join(','));
        return;
      }
      st.socket = socket;
      st.proxyPort = this.#rules ? (socket.addresses()[0]?.port ?? 0) : 0;
      // Asking the kernel for the bound addresses costs a system call per listener: only when logged.
      if (log.isInfoEnabled()) {
        const fields = { service: st.spn, protocol: st.port.protocol, addresses: socket.addresses().map((a) => formatHostPort(a.host, a.port)).join(',') };
        log.info(st.error ? 'listener recovered' : 'opened listener', fields);
      }
      st.error = undefined;
      break;
    }
    if (this.#rules && st.port.nodePort > 0 && st.scope !== 'internal') await this.#claimNodePort(st);
  }

  async #claimNodePort(st: PortState): Promise<void> {
    try {
      st.claim = await claimNodePort(st.port.protocol as 'TCP' | 'UDP', st.port.nodePort, st.family === 'IPv6' ? '::' : '0.0.0.0');
      st.claimError = undefined;
    } catch (err) {
      if (st.claimError?.message !== (err as Error).message) {
        log.error('cannot hold node port', { service: st.spn, protocol: st.port.protocol, nodePort: st.port.nodePort, error: (err as Error).message });
      }
      st.claimError = err as Error;
    }
  }

  #failedToOpen(st: PortState, err: Error, addresses?: string): void {
    // Only this service port is affected; it is retried at every sync until it opens.
    if (!st.error || st.error.message !== err.message) {
      log.error('cannot open listener', { service: st.spn, protocol: st.port.protocol, addresses, error: err.message });
    }
    st.error = err;
  }

  async #closePort(st: PortState): Promise<void> {
    this.#ports.delete(st.key);
    st.claim?.close();
    if (!st.socket) return;
    this.#allocator.release(st.proxyPort);
    await st.socket.close();
    if (st.socket.stats.active > 0) this.#retired.add(st.socket);
    log.info('closed listener', { service: st.spn, protocol: st.port.protocol });
  }

  async #retryFailedPorts(): Promise<void> {
    for (const st of this.#ports.values()) {
      if (this.#closed) return;
      if (!st.socket) await this.#openPort(st);
      else if (this.#rules && st.port.nodePort > 0 && st.scope !== 'internal' && !st.claim) await this.#claimNodePort(st);
    }
  }

  /**
   * Gives the balancer the current endpoints of every port of a service; no listener is touched.
   * Returns whether a port went from no endpoints to some, or back.
   */
  #pushEndpoints(key: ServiceKey): boolean {
    const svc = this.#services.get(key);
    const names = this.#portsByService.get(key);
    if (!svc || !names) return false;
    let flipped = false;
    for (const name of names) {
      const st = this.#ports.get(name)!;
      const policy = st.scope === 'external' ? svc.externalTrafficPolicy : svc.internalTrafficPolicy;
      const all = this.#endpoints.endpointsFor(svc, st.port, { ...(policy === 'Local' ? { accept: this.#isThisNode } : { topology: this.#node.topology() }), ...(st.family ? { family: st.family } : {}) });
      const eps = this.#dialVia ? this.#dialVia.usable(all, st.spn) : all;
      const epKey = eps.map((e) => e.key).join(',');
      if (epKey === st.endpointsKey) continue;
      if ((st.endpointsKey === '') !== (epKey === '')) flipped = true;
      st.endpointsKey = epKey;
      this.#balancer.updateEndpoints(st.key, eps);
      log.info('endpoints changed', { service: st.key, endpoints: eps.length });
    }
    return flipped;
  }

  /** none mode: closes the listeners of ports that lost their last endpoint (reopened by #retryFailedPorts). */
  async #closeUnservedPorts(): Promise<void> {
    for (const st of this.#ports.values()) {
      const socket = st.socket;
      if (!socket || this.#balancer.endpoints(st.key).length > 0) continue;
      st.socket = undefined;
      await socket.close();
      if (socket.stats.active > 0) this.#retired.add(socket);
      log.info('closed listener: no endpoints', { service: st.key, protocol: st.port.protocol });
    }
  }

  readonly #isThisNode = (nodeName: string): boolean => nodeName === this.#config.nodeName;
}

/** The service's scheduling annotations as the balancer takes them; one object per spec, so unchanged specs compare equal. */
const schedulingBySpec = new WeakMap<ServiceSpec, SchedulingPolicy>();
function schedulingOf(svc: ServiceSpec): SchedulingPolicy {
  let p = schedulingBySpec.get(svc);
  if (p === undefined) {
    p = { scheduler: svc.scheduler ?? DEFAULT_SCHEDULER, weights: svc.weights ?? {} };
    schedulingBySpec.set(svc, p);
  }
  return p;
}
