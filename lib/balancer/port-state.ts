import type { Endpoint } from '../model/endpoint.js';
import { NO_ENDPOINT_KEYS } from './endpoint-index.js';
import { parseIP } from '../model/ip-address.js';
import { DEFAULT_AFFINITY_TIMEOUT_SECONDS } from '../model/service.js';
import type { AffinityType } from '../model/service.js';
import type { SchedulingPolicy } from './load-balancer.js';
import type { Scheduler } from './scheduler.js';

// What SchedulingBalancer keeps per service port, and how it is made and compared.

/**
 * A client's pin. The endpoint is held by key and resolved through the current list, so a pin never
 * hands out an endpoint object that is no longer (or no longer exactly) in the list.
 */
export interface AffinityEntry {
  endpointKey: string;
  lastUsedMs: number;
}

/** One service port: its endpoints, scheduling and affinity pins. */
export interface PortState {
  /** Shuffled once per change of the set; never mutated after assignment (handed out by endpoints()). */
  endpoints: readonly Endpoint[];
  /** See endpointIndex(): no Map of its own for one endpoint. */
  byKey: ReadonlyMap<string, Endpoint>;
  scheduling: SchedulingPolicy;
  /** Built on the first pick after the set or the scheduling changed; kept while both stay. */
  scheduler: Scheduler | undefined;
  affinityType: AffinityType;
  timeoutMs: number;
  /**
   * clientIP → pin, in least-recently-used-first order: refreshing a pin deletes and re-sets it.
   * NO_PINS until the first pin (pinMap() makes the port's own map): deleting from or clearing the
   * shared empty map is harmless, and 10,000 ports without affinity hold no map of their own.
   */
  affinity: Map<string, AffinityEntry>;
}

export const NO_ENDPOINTS: readonly Endpoint[] = Object.freeze([]);
const NO_PINS = new Map<string, AffinityEntry>();

export function newPortState(affinityType: AffinityType, timeoutMs: number, scheduling: SchedulingPolicy): PortState {
  return { endpoints: NO_ENDPOINTS, byKey: NO_ENDPOINT_KEYS, scheduling, scheduler: undefined, affinityType, timeoutMs, affinity: NO_PINS };
}

/** The port's own pin map, to add a pin to (see PortState.affinity). */
export function pinMap(state: PortState): Map<string, AffinityEntry> {
  if (state.affinity === NO_PINS) state.affinity = new Map();
  return state.affinity;
}

/** An endpoint's weight: by its IP address, else by its Pod's name, else 1. */
export function weightOf(ep: Endpoint, weights: Readonly<Record<string, number>>): number {
  const ip = parseIP(ep.ip)?.address ?? ep.ip;
  return weights[ip] ?? (ep.pod !== undefined ? weights[ep.pod.name] : undefined) ?? 1;
}

export function sameScheduling(a: SchedulingPolicy, b: SchedulingPolicy): boolean {
  if (a.scheduler !== b.scheduler) return false;
  const ka = Object.keys(a.weights);
  if (ka.length !== Object.keys(b.weights).length) return false;
  return ka.every((k) => a.weights[k] === b.weights[k]);
}

/** 0 (or a missing value) means Kubernetes' default, as in the Service API. */
export function affinityTimeoutMs(timeoutSeconds: number | undefined): number {
  const seconds = timeoutSeconds !== undefined && Number.isFinite(timeoutSeconds) && timeoutSeconds > 0 ? timeoutSeconds : DEFAULT_AFFINITY_TIMEOUT_SECONDS;
  return seconds * 1000;
}

export function sameKeys(a: ReadonlyMap<string, Endpoint>, b: ReadonlyMap<string, Endpoint>): boolean {
  if (a.size !== b.size) return false;
  for (const key of b.keys()) if (!a.has(key)) return false;
  return true;
}
