import type { Endpoint } from '../model/endpoint.js';

/** What a scheduler may look at for one pick besides the endpoints. */
export interface PickState {
  /** Connections (TCP) or sessions (UDP) open now to an endpoint, by key, as this process counts them. */
  active(endpointKey: string): number;
  /**
   * Endpoints just tried and found backed off: a scheduler returns one outside this set when the
   * port has one, so a retry moves on even where the pick is a pure function of the client.
   */
  readonly avoid: ReadonlySet<string> | undefined;
}

/**
 * One service port's way of choosing an endpoint for a new connection. An instance is built for one
 * endpoint list (never empty) and its weights, both in a fixed order; pick is handed that same list
 * (its objects may be fresher, the order is the same) and must be cheap: it sits on the
 * per-connection path. ClientIP affinity is not a scheduler's business: the balancer applies it
 * before asking.
 */
export interface Scheduler {
  pick(endpoints: readonly Endpoint[], clientIP: string, state: PickState): Endpoint;
}

/** Builds a scheduler for endpoints with weights[i] for endpoints[i] (integers ≥ 1). */
export type SchedulerFactory = (endpoints: readonly Endpoint[], weights: readonly number[], random: () => number) => Scheduler;

/** true when every weight is the same: the weighted variants then reduce to the plain ones. */
export function equalWeights(weights: readonly number[]): boolean {
  return weights.every((w) => w === weights[0]);
}

/** The index of the first endpoint at or after start (cyclically) that is not avoided; start if none. */
export function firstUsable(endpoints: readonly Endpoint[], start: number, avoid: ReadonlySet<string> | undefined): number {
  if (avoid === undefined) return start;
  const n = endpoints.length;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    if (!avoid.has((endpoints[i] as Endpoint).key)) return i;
  }
  return start;
}
