import type { Endpoint } from '../model/endpoint.js';
import type { PickState, Scheduler } from './scheduler.js';

/**
 * random: an endpoint drawn at random, each with probability weight/sum(weights); with equal
 * weights what the iptables mode does (its statistic-module rules draw uniformly).
 */
export class RandomScheduler implements Scheduler {
  /** cumulative[i] = weights[0] + … + weights[i]. */
  readonly #cumulative: number[];
  readonly #random: () => number;

  constructor(_endpoints: readonly Endpoint[], weights: readonly number[], random: () => number) {
    let sum = 0;
    this.#cumulative = weights.map((w) => (sum += w));
    this.#random = random;
  }

  pick(endpoints: readonly Endpoint[], _clientIP: string, state: PickState): Endpoint {
    const avoid = state.avoid;
    let total = this.#cumulative[this.#cumulative.length - 1] as number;
    const weightOf = (i: number): number => (this.#cumulative[i] as number) - (i > 0 ? (this.#cumulative[i - 1] as number) : 0);
    if (avoid !== undefined) {
      total = 0;
      for (let i = 0; i < endpoints.length; i++) if (!avoid.has((endpoints[i] as Endpoint).key)) total += weightOf(i);
      if (total === 0) return endpoints[0] as Endpoint;
    }
    let r = this.#random() * total;
    for (let i = 0; i < endpoints.length; i++) {
      if (avoid?.has((endpoints[i] as Endpoint).key) === true) continue;
      r -= weightOf(i);
      if (r < 0) return endpoints[i] as Endpoint;
    }
    // Only reached through rounding at the top of the range.
    for (let i = endpoints.length - 1; i >= 0; i--) if (avoid?.has((endpoints[i] as Endpoint).key) !== true) return endpoints[i] as Endpoint;
    return endpoints[0] as Endpoint;
  }
}
