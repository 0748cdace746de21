import type { Endpoint } from '../model/endpoint.js';
import { hash32 } from './hash.js';
import type { PickState, Scheduler } from './scheduler.js';
import { byKey, slotWalk } from './source-hash-scheduler.js';

/**
 * Lookup table sizes: primes, so that every skip is coprime with the size and each endpoint's
 * permutation visits every slot. 65537 is IPVS's default for mh.
 */
const TABLE_SIZES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537] as const;

/**
 * Slots per unit of weight the table aims for. Maglev's paper asks for a table much larger than the
 * number of backends (M ≥ 100·N) so that shares stay within about 1% of the weights and few
 * clients move on a change beyond the ones that must.
 */
const SLOTS_PER_WEIGHT = 100;

/** The smallest table size with SLOTS_PER_WEIGHT slots per unit of weight (the largest if none). */
export function maglevTableSize(totalWeight: number): number {
  for (const m of TABLE_SIZES) if (m >= totalWeight * SLOTS_PER_WEIGHT) return m;
  return TABLE_SIZES[TABLE_SIZES.length - 1];
}

/**
 * mh: Maglev hashing (Eisenbud et al., NSDI 2016), named as IPVS names it. Each endpoint has a
 * permutation of the M slots of a lookup table, derived from two hashes of its key (offset,
 * skip); the endpoints take turns claiming their next free preferred slot, an endpoint of weight w
 * taking w turns per round, until the table is full. A client's address hashes to a slot. Because
 * preferences depend only on each endpoint's own key, adding an endpoint to N moves about 1/(N+1)
 * of the clients (the slots it claims) and removing one moves only its own clients, while sh remaps
 * most of them.
 */
export class MaglevScheduler implements Scheduler {
  /** Slot → index into the endpoint list. */
  readonly #table: number[];

  constructor(endpoints: readonly Endpoint[], weights: readonly number[]) {
    const order = byKey(endpoints);
    const w = reduceByGcd(order.map((i) => weights[i] as number));
    const m = maglevTableSize(w.reduce((a, b) => a + b, 0));
    const table = new Array<number>(m).fill(-1);
    const position = order.map((i) => hash32((endpoints[i] as Endpoint).key, 1) % m);
    const skip = order.map((i) => (hash32((endpoints[i] as Endpoint).key, 2) % (m - 1)) + 1);
    let filled = 0;
    while (filled < m) {
      for (let j = 0; j < order.length && filled < m; j++) {
        for (let turn = 0; turn < (w[j] as number) && filled < m; turn++) {
          let c = position[j] as number;
          while ((table[c] as number) >= 0) c = (c + (skip[j] as number)) % m;
          table[c] = order[j] as number;
          position[j] = (c + (skip[j] as number)) % m;
          filled++;
        }
      }
    }
    this.#table = table;
  }

  pick(endpoints: readonly Endpoint[], clientIP: string, state: PickState): Endpoint {
    return endpoints[slotWalk(this.#table, hash32(clientIP) % this.#table.length, endpoints, state.avoid)] as Endpoint;
  }

  /** The table's size, for tests and docs. */
  get tableSize(): number {
    return this.#table.length;
  }
}

function reduceByGcd(weights: readonly number[]): number[] {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = weights.reduce(gcd, 0) || 1;
  return weights.map((x) => x / g);
}
