import type { Endpoint } from '../model/endpoint.js';
import { hash32 } from './hash.js';
import type { PickState, Scheduler } from './scheduler.js';

/**
 * sh: the client's address hashed onto a table where each endpoint has as many slots as its
 * weight, as IPVS's sh fills its buckets. A client keeps its endpoint while the set is unchanged,
 * in every process (the table follows the endpoints sorted by key, not the shuffled list); any
 * change of the set remaps most clients (mh does not).
 */
export class SourceHashScheduler implements Scheduler {
  /** Slot → index into the endpoint list. */
  readonly #table: number[] = [];

  constructor(endpoints: readonly Endpoint[], weights: readonly number[]) {
    for (const i of byKey(endpoints)) for (let k = 0; k < (weights[i] as number); k++) this.#table.push(i);
  }

  pick(endpoints: readonly Endpoint[], clientIP: string, state: PickState): Endpoint {
    return endpoints[slotWalk(this.#table, hash32(clientIP) % this.#table.length, endpoints, state.avoid)] as Endpoint;
  }
}

/** Indices of endpoints in the order of their keys: a table built from it does not depend on the shuffle. */
export function byKey(endpoints: readonly Endpoint[]): number[] {
  return endpoints.map((_, i) => i).sort((a, b) => ((endpoints[a] as Endpoint).key < (endpoints[b] as Endpoint).key ? -1 : 1));
}

/** The endpoint of slot start, or of the next slot whose endpoint is not avoided (IPVS sh's fallback). */
export function slotWalk(table: ArrayLike<number>, start: number, endpoints: readonly Endpoint[], avoid: ReadonlySet<string> | undefined): number {
  const first = table[start] as number;
  if (avoid === undefined || !avoid.has((endpoints[first] as Endpoint).key)) return first;
  for (let k = 1; k < table.length; k++) {
    const i = table[(start + k) % table.length] as number;
    if (!avoid.has((endpoints[i] as Endpoint).key)) return i;
  }
  return first;
}
