import { DEFAULT_SCHEDULING } from '../balancer/load-balancer.js';
import type { AffinityPolicy, ConnectionCounts, LoadBalancer, SchedulingPolicy } from '../balancer/load-balancer.js';
import type { Endpoint } from '../model/endpoint.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { BalancerOp } from './worker-protocol.js';

/**
 * A LoadBalancer whose changes are also published, for replicas in worker processes. Picks stay
 * local: each process schedules on its own, so affinity is only exact where one process serves
 * a port (WorkerPool serves ClientIP ports in the agent process alone), and lc, sed and nq count
 * only the connections of their own process. sh and mh agree across processes: their tables
 * depend on the endpoint set alone.
 */
export class ReplicatedBalancer implements LoadBalancer {
  readonly #local: LoadBalancer;
  readonly #publish: (op: BalancerOp) => void;
  readonly #state = new Map<ProxySocketKey, { affinity: AffinityPolicy; scheduling: SchedulingPolicy; endpoints: readonly Endpoint[] }>();

  constructor(local: LoadBalancer, publish: (op: BalancerOp) => void) {
    this.#local = local;
    this.#publish = publish;
  }

  newService(spn: ProxySocketKey, affinity: AffinityPolicy, scheduling: SchedulingPolicy = DEFAULT_SCHEDULING): void {
    this.#local.newService(spn, affinity, scheduling);
    const st = this.#state.get(spn);
    if (st !== undefined && st.affinity.type === affinity.type && st.affinity.timeoutSeconds === affinity.timeoutSeconds && st.scheduling === scheduling) return;
    this.#state.set(spn, { affinity: { type: affinity.type, timeoutSeconds: affinity.timeoutSeconds }, scheduling, endpoints: st?.endpoints ?? [] });
    this.#publish({ op: 'new', spn, affinity, scheduling });
  }

  updateEndpoints(spn: ProxySocketKey, endpoints: readonly Endpoint[]): void {
    this.#local.updateEndpoints(spn, endpoints);
    const st = this.#state.get(spn);
    if (st !== undefined) st.endpoints = endpoints;
    else this.#state.set(spn, { affinity: { type: 'None', timeoutSeconds: 0 }, scheduling: DEFAULT_SCHEDULING, endpoints });
    this.#publish({ op: 'endpoints', spn, endpoints });
  }

  deleteService(spn: ProxySocketKey): void {
    this.#local.deleteService(spn);
    this.#state.delete(spn);
    this.#publish({ op: 'delete', spn });
  }

  nextEndpoint(spn: ProxySocketKey, clientIP: string, reset: boolean, avoid?: ReadonlySet<string>): Endpoint | undefined {
    return this.#local.nextEndpoint(spn, clientIP, reset, avoid);
  }

  needsClientIP(spn: ProxySocketKey): boolean {
    return this.#local.needsClientIP?.(spn) ?? true;
  }

  trackConnections(spn: ProxySocketKey, counts: ConnectionCounts): void {
    this.#local.trackConnections?.(spn, counts);
  }

  endpoints(spn: ProxySocketKey): readonly Endpoint[] {
    return this.#local.endpoints(spn);
  }

  cleanupStaleStickySessions(): void {
    this.#local.cleanupStaleStickySessions();
  }

  /** The operations that bring a new replica to the current state. */
  snapshot(): BalancerOp[] {
    const ops: BalancerOp[] = [];
    for (const [spn, st] of this.#state) {
      ops.push({ op: 'new', spn, affinity: st.affinity, scheduling: st.scheduling });
      if (st.endpoints.length > 0) ops.push({ op: 'endpoints', spn, endpoints: st.endpoints });
    }
    return ops;
  }
}

/** Applies published operations to a replica. */
export function applyBalancerOps(balancer: LoadBalancer, ops: readonly BalancerOp[]): void {
  for (const o of ops) {
    if (o.op === 'new') balancer.newService(o.spn, o.affinity, o.scheduling);
    else if (o.op === 'endpoints') balancer.updateEndpoints(o.spn, o.endpoints);
    else balancer.deleteService(o.spn);
  }
}
