import type { Endpoint } from '../model/endpoint.js';
import { hash32 } from './hash.js';
import type { PickState, Scheduler } from './scheduler.js';
import { byKey, slotWalk } from './source-hash-scheduler.js';

/**
 * The lookup table's size, as IPVS's mh defaults to: a prime, so that every skip is coprime with it
 * and each endpoint's permutation visits every slot. It is fixed rather than grown with the
 * endpoints: a table of another size is another mapping, and the point of mh is that a change of
 * the set moves few clients. 65537 slots keep shares within a fraction of a percent of the weights
 * up to hundreds of endpoints (Maglev's paper asks for M ≥ 100·N), for 128 KiB per port and a few
 * milliseconds per change of the set.
 */
export const MAGLEV_TABLE_SIZE = 65537;

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
  readonly #table: ArrayLike<number>;

  constructor(endpoints: readonly Endpoint[], weights: readonly number[], tableSize = MAGLEV_TABLE_SIZE) {
    const order = byKey(endpoints);
    const w = reduceByGcd(order.map((i) => weights[i] as number));
    const m = tableSize;
    const table = new Int32Array(m).fill(-1);
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
    this.#table = endpoints.length <= 0xffff ? Uint16Array.from(table) : table;
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
