import type { Endpoint } from '../model/endpoint.js';
import type { PickState, Scheduler } from './scheduler.js';
import { ShortestExpectedDelayScheduler } from './shortest-expected-delay-scheduler.js';

/**
 * nq: an endpoint with no active connection if there is one (whatever its weight: nothing queues
 * behind an idle endpoint), else as sed.
 */
export class NeverQueueScheduler implements Scheduler {
  readonly #sed: ShortestExpectedDelayScheduler;

  constructor(endpoints: readonly Endpoint[], weights: readonly number[]) {
    this.#sed = new ShortestExpectedDelayScheduler(endpoints, weights);
  }

  pick(endpoints: readonly Endpoint[], _clientIP: string, state: PickState): Endpoint {
    const best = this.#sed.scan(endpoints, state, true);
    this.#sed.advance(best, endpoints.length);
    return endpoints[best] as Endpoint;
  }
}
