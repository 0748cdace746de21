import type { Endpoint } from '../model/endpoint.js';
import type { PickState, Scheduler } from './scheduler.js';

/**
 * sed: the endpoint with the smallest (active + 1) / weight, the delay a new connection expects if
 * an endpoint serves its connections at a rate proportional to its weight. Ties go round robin.
 */
export class ShortestExpectedDelayScheduler implements Scheduler {
  readonly #weights: readonly number[];
  #start = 0;

  constructor(_endpoints: readonly Endpoint[], weights: readonly number[]) {
    this.#weights = weights;
  }

  pick(endpoints: readonly Endpoint[], _clientIP: string, state: PickState): Endpoint {
    const best = this.scan(endpoints, state, false);
    this.#start = (best + 1) % endpoints.length;
    return endpoints[best] as Endpoint;
  }

  /**
   * The index of the endpoint with the smallest expected delay, starting after the last pick; with
   * idleFirst, the first endpoint with no active connection wins outright (nq).
   */
  scan(endpoints: readonly Endpoint[], state: PickState, idleFirst: boolean): number {
    const n = endpoints.length;
    const w = this.#weights;
    let best = -1;
    let bestLoad = 0;
    let bestWeight = 1;
    for (let k = 0; k < n; k++) {
      const i = (this.#start + k) % n;
      const key = (endpoints[i] as Endpoint).key;
      if (state.avoid?.has(key) === true) continue;
      const a = state.active(key);
      if (idleFirst && a === 0) return i;
      const wi = w[i] as number;
      // (a+1)/wi < (bestLoad)/(bestWeight), cross-multiplied to stay in integers.
      if (best < 0 || (a + 1) * bestWeight < bestLoad * wi) {
        best = i;
        bestLoad = a + 1;
        bestWeight = wi;
      }
    }
    return best < 0 ? this.#start % n : best;
  }

  /** Moves the tie-breaking start past the last pick (for nq, which shares the scan). */
  advance(picked: number, n: number): void {
    this.#start = (picked + 1) % n;
  }
}
