import { InvalidConfigError } from '../errors.js';
import { logger } from '../log.js';
import type { Endpoint } from '../model/endpoint.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import { DEFAULT_SCHEDULING } from './load-balancer.js';
import { endpointIndex } from './endpoint-index.js';
import type { AffinityPolicy, ConnectionCounts, LoadBalancer, SchedulingPolicy } from './load-balancer.js';
import { affinityTimeoutMs, newPortState, NO_ENDPOINTS, pinMap, sameKeys, sameScheduling, weightOf } from './port-state.js';
import type { PortState } from './port-state.js';
import type { PickState, Scheduler } from './scheduler.js';
import { CLIENT_HASHING_SCHEDULERS, schedulerFor } from './scheduler-for.js';
import { shuffle } from './shuffle.js';

const log = logger('balancer');

export interface SchedulingBalancerOptions {
  /** Source of randomness for shuffling new endpoint lists and for the random scheduler, as Math.random ([0, 1)). */
  readonly random?: () => number;
  /** Clock in milliseconds, as Date.now; affinity ages are measured with it. */
  readonly now?: () => number;
  /**
   * Most clients remembered per service port under ClientIP affinity. Past it, the least recently
   * used client is forgotten, so a scan from many source addresses cannot grow memory without bound.
   */
  readonly maxAffinityEntries?: number;
}

export const DEFAULT_MAX_AFFINITY_ENTRIES = 100_000;

/**
 * Per service port, a scheduler (rr by default) over a shuffled endpoint list, with optional
 * ClientIP affinity in front of it: a client with a live pin keeps its endpoint whatever the
 * scheduler, the others are scheduled and (with affinity) pinned. With rr this is the legacy
 * userspace proxier's LoadBalancerRR, minus its known bugs (a timeout given after the endpoints
 * arrived was ignored; affinity entries were unbounded).
 */
export class SchedulingBalancer implements LoadBalancer {
  readonly #ports = new Map<ProxySocketKey, PortState>();
  /** The ports that have pinned a client since their last cleanup found none: the only ones cleanupStaleStickySessions reads, not every port at every sync. */
  readonly #pinned = new Set<ProxySocketKey>();
  /** Kept apart from the port state: a proxy socket may register before or after newService. */
  readonly #counts = new Map<ProxySocketKey, ConnectionCounts>();
  /** Per port, the PickState of picks without avoid, made once per #counts entry rather than per pick. */
  readonly #pickStates = new Map<ProxySocketKey, PickState>();
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #maxAffinityEntries: number;

  constructor(options: SchedulingBalancerOptions = {}) {
    const problems: string[] = [];
    const { random = Math.random, now = Date.now, maxAffinityEntries = DEFAULT_MAX_AFFINITY_ENTRIES } = options;
    if (typeof random !== 'function') problems.push('random must be a function');
    if (typeof now !== 'function') problems.push('now must be a function');
    if (!Number.isSafeInteger(maxAffinityEntries) || maxAffinityEntries < 1) {
      problems.push(`maxAffinityEntries must be a positive integer, got ${String(maxAffinityEntries)}`);
    }
    if (problems.length > 0) throw new InvalidConfigError(problems);
    this.#random = random;
    this.#now = now;
    this.#maxAffinityEntries = maxAffinityEntries;
  }

  newService(spn: ProxySocketKey, affinity: AffinityPolicy, scheduling: SchedulingPolicy = DEFAULT_SCHEDULING): void {
    const timeoutMs = affinityTimeoutMs(affinity.timeoutSeconds);
    const state = this.#ports.get(spn);
    if (state === undefined) {
      this.#ports.set(spn, newPortState(affinity.type, timeoutMs, scheduling));
      return;
    }
    if (!sameScheduling(state.scheduling, scheduling)) {
      state.scheduling = scheduling;
      state.scheduler = undefined;
      log.debug('scheduler changed', { service: spn, scheduler: scheduling.scheduler });
    }
    // Unlike the legacy code, the timeout is applied here too: endpoints usually arrive before the
    // Service, so the state already exists and a custom timeout would otherwise be lost.
    state.timeoutMs = timeoutMs;
    if (state.affinityType !== affinity.type) {
      state.affinityType = affinity.type;
      if (affinity.type === 'None') state.affinity.clear();
    }
  }

  updateEndpoints(spn: ProxySocketKey, endpoints: readonly Endpoint[]): void {
    // Dedupe by key: the same address can appear in two EndpointSlices while one replaces the
    // other, and counting it twice would skew the round robin towards it.
    const byKey = endpointIndex(endpoints);

    let state = this.#ports.get(spn);
    if (state === undefined) {
      if (byKey.size === 0) return;
      // Endpoints often arrive before the Service: start without affinity until newService says.
      state = newPortState('None', affinityTimeoutMs(0), DEFAULT_SCHEDULING);
      this.#ports.set(spn, state);
    }

    if (sameKeys(state.byKey, byKey)) {
      // Same set, maybe in another order or with fresher metadata (nodeName): keep the position
      // and the pins, but hand out the new objects.
      if (state.endpoints.some((ep) => byKey.get(ep.key) !== ep)) {
        state.endpoints = Object.freeze(state.endpoints.map((ep) => byKey.get(ep.key) as Endpoint));
        state.byKey = byKey;
      }
      return;
    }

    state.endpoints = Object.freeze(byKey.size === 1 ? [endpoints[0]!] : shuffle([...byKey.values()], this.#random));
    state.byKey = byKey;
    state.scheduler = undefined;
    // Clients of endpoints that are still there keep their pin; the others are re-balanced.
    for (const [client, entry] of state.affinity) {
      if (!byKey.has(entry.endpointKey)) state.affinity.delete(client);
    }
    if (log.isDebugEnabled()) log.debug('endpoints changed', { service: spn, endpoints: state.endpoints.length });
  }

  deleteService(spn: ProxySocketKey): void {
    this.#ports.delete(spn);
    this.#pinned.delete(spn);
    this.#counts.delete(spn);
    this.#pickStates.delete(spn);
  }

  trackConnections(spn: ProxySocketKey, counts: ConnectionCounts): void {
    this.#counts.set(spn, counts);
    this.#pickStates.delete(spn);
  }

  nextEndpoint(spn: ProxySocketKey, clientIP: string, reset: boolean, avoid?: ReadonlySet<string>): Endpoint | undefined {
    const state = this.#ports.get(spn);
    if (state === undefined) return undefined;
    const n = state.endpoints.length;
    if (n === 0) return undefined;

    const sticky = state.affinityType === 'ClientIP';
    const now = sticky ? this.#now() : 0;
    if (sticky && !reset) {
      const entry = state.affinity.get(clientIP);
      if (entry !== undefined && now - entry.lastUsedMs < state.timeoutMs) {
        const pinned = state.byKey.get(entry.endpointKey);
        if (pinned !== undefined && avoid?.has(pinned.key) !== true) {
          entry.lastUsedMs = now;
          state.affinity.delete(clientIP);
          state.affinity.set(clientIP, entry);
          return pinned;
        }
      }
    }

    state.scheduler ??= this.#build(state);
    const pickState = this.#pickState(spn);
    const ep = state.scheduler.pick(state.endpoints, clientIP, avoid === undefined ? pickState : { active: pickState.active, avoid });
    if (sticky) this.#pin(spn, state, clientIP, ep.key, now);
    return ep;
  }

  endpoints(spn: ProxySocketKey): readonly Endpoint[] {
    return this.#ports.get(spn)?.endpoints ?? NO_ENDPOINTS;
  }

  needsClientIP(spn: ProxySocketKey): boolean {
    const state = this.#ports.get(spn);
    return state === undefined || state.affinityType === 'ClientIP' || CLIENT_HASHING_SCHEDULERS.includes(state.scheduling.scheduler);
  }

  cleanupStaleStickySessions(): void {
    const now = this.#now();
    for (const spn of this.#pinned) {
      const state = this.#ports.get(spn);
      const before = state?.affinity.size ?? 0;
      if (state === undefined || before === 0) {
        this.#pinned.delete(spn);
        continue;
      }
      // A full scan rather than stopping at the first fresh entry: Date.now can step backwards,
      // so LRU order does not guarantee lastUsedMs order.
      for (const [client, entry] of state.affinity) {
        if (now - entry.lastUsedMs >= state.timeoutMs) state.affinity.delete(client);
      }
      const dropped = before - state.affinity.size;
      if (dropped > 0) log.debug('dropped stale sticky sessions', { service: spn, dropped });
    }
  }

  /** The scheduler of a service port (rr when unknown): for status views. */
  schedulerOf(spn: ProxySocketKey): SchedulingPolicy['scheduler'] {
    return this.#ports.get(spn)?.scheduling.scheduler ?? DEFAULT_SCHEDULING.scheduler;
  }

  #pickState(spn: ProxySocketKey): PickState {
    let ps = this.#pickStates.get(spn);
    if (ps === undefined) {
      const counts = this.#counts.get(spn);
      ps = { active: counts === undefined ? noConnections : (key) => counts.get(key)?.active ?? 0, avoid: undefined };
      this.#pickStates.set(spn, ps);
    }
    return ps;
  }

  #build(state: PortState): Scheduler {
    const weights = state.endpoints.map((ep) => weightOf(ep, state.scheduling.weights));
    return schedulerFor(state.scheduling.scheduler)(state.endpoints, weights, this.#random);
  }

  /** How many clients are pinned on a service port (0 when unknown): for metrics and tests. */
  affinityEntryCount(spn: ProxySocketKey): number {
    return this.#ports.get(spn)?.affinity.size ?? 0;
  }

  #pin(spn: ProxySocketKey, state: PortState, clientIP: string, endpointKey: string, now: number): void {
    const existing = state.affinity.get(clientIP);
    if (existing !== undefined) {
      existing.endpointKey = endpointKey;
      existing.lastUsedMs = now;
      state.affinity.delete(clientIP);
      state.affinity.set(clientIP, existing);
      return;
    }
    if (state.affinity.size >= this.#maxAffinityEntries) {
      // Map iterates in insertion order and refreshes re-insert, so the first key is the LRU one.
      const oldest = state.affinity.keys().next();
      if (oldest.done !== true) state.affinity.delete(oldest.value);
    }
    pinMap(state).set(clientIP, { endpointKey, lastUsedMs: now });
    this.#pinned.add(spn);
  }
}

function noConnections(): number {
  return 0;
}
