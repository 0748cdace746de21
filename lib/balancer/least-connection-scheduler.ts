import type { Endpoint } from '../model/endpoint.js';
import type { PickState, Scheduler } from './scheduler.js';

/**
 * lc: the endpoint with the fewest active connections. Ties go round robin (the scan starts after
 * the last pick), so idle endpoints share new connections instead of the first taking them all.
 * Weights are not used, as in IPVS's lc; sed is the weighted form.
 */
export class LeastConnectionScheduler implements Scheduler {
  #start = 0;

  pick(endpoints: readonly Endpoint[], _clientIP: string, state: PickState): Endpoint {
    const n = endpoints.length;
    let best = -1;
    let bestActive = Infinity;
    for (let k = 0; k < n; k++) {
      const i = (this.#start + k) % n;
      const key = (endpoints[i] as Endpoint).key;
      if (state.avoid?.has(key) === true) continue;
      const a = state.active(key);
      if (a < bestActive) {
        best = i;
        bestActive = a;
        if (a === 0) break;
      }
    }
    if (best < 0) best = this.#start % n;
    this.#start = (best + 1) % n;
    return endpoints[best] as Endpoint;
  }
}
