import type { Endpoint } from '../model/endpoint.js';
import { equalWeights, firstUsable } from './scheduler.js';
import type { PickState, Scheduler } from './scheduler.js';

/**
 * rr: each endpoint in turn, in the (shuffled) list order. With unequal weights, smooth weighted
 * round robin (IPVS's wrr, spread as nginx spreads it): over sum(weights) picks each endpoint gets
 * exactly its weight, interleaved rather than in bursts.
 */
export class RoundRobinScheduler implements Scheduler {
  readonly #weights: readonly number[] | undefined;
  readonly #current: number[];
  readonly #total: number;
  #index = 0;

  constructor(endpoints: readonly Endpoint[], weights: readonly number[]) {
    this.#weights = equalWeights(weights) ? undefined : weights;
    this.#current = new Array<number>(endpoints.length).fill(0);
    this.#total = weights.reduce((a, b) => a + b, 0);
  }

  pick(endpoints: readonly Endpoint[], _clientIP: string, state: PickState): Endpoint {
    const n = endpoints.length;
    if (this.#weights === undefined) {
      const i = firstUsable(endpoints, this.#index, state.avoid);
      this.#index = (i + 1) % n;
      return endpoints[i] as Endpoint;
    }
    const w = this.#weights;
    const cur = this.#current;
    let best = -1;
    for (let i = 0; i < n; i++) {
      cur[i] = (cur[i] as number) + (w[i] as number);
      if (state.avoid?.has((endpoints[i] as Endpoint).key) === true) continue;
      if (best < 0 || (cur[i] as number) > (cur[best] as number)) best = i;
    }
    if (best < 0) best = 0;
    cur[best] = (cur[best] as number) - this.#total;
    return endpoints[best] as Endpoint;
  }
}
