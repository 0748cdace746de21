import type { Endpoint } from '../model/endpoint.js';

/**
 * A port's endpoints by key, the first of each key kept: a Map for two or more, a one-entry view
 * for one, a shared empty map for none. Most service ports have one endpoint; a Map of one entry
 * is about 180 bytes of heap, 1.8 MB with 10,000 such ports, all of it copied by the collector
 * during a first sync.
 */
export function endpointIndex(endpoints: readonly Endpoint[]): ReadonlyMap<string, Endpoint> {
  if (endpoints.length === 0) return NO_ENDPOINT_KEYS;
  const first = endpoints[0]!;
  let i = 1;
  while (i < endpoints.length && endpoints[i]!.key === first.key) i++;
  if (i === endpoints.length) return new OneEndpoint(first);
  const byKey = new Map<string, Endpoint>();
  for (const ep of endpoints) if (!byKey.has(ep.key)) byKey.set(ep.key, ep);
  return byKey;
}

export const NO_ENDPOINT_KEYS: ReadonlyMap<string, Endpoint> = new Map();

/** The index of a single endpoint: a read-only map of one entry. */
class OneEndpoint implements ReadonlyMap<string, Endpoint> {
  readonly #endpoint: Endpoint;

  constructor(endpoint: Endpoint) {
    this.#endpoint = endpoint;
  }

  get size(): number {
    return 1;
  }

  get(key: string): Endpoint | undefined {
    return key === this.#endpoint.key ? this.#endpoint : undefined;
  }

  has(key: string): boolean {
    return key === this.#endpoint.key;
  }

  forEach(fn: (value: Endpoint, key: string, map: ReadonlyMap<string, Endpoint>) => void, thisArg?: unknown): void {
    fn.call(thisArg, this.#endpoint, this.#endpoint.key, this);
  }

  // The iterators are for rare paths (a changed endpoint set): a Map of one entry made then.
  entries(): MapIterator<[string, Endpoint]> {
    return this.#map().entries();
  }

  keys(): MapIterator<string> {
    return this.#map().keys();
  }

  values(): MapIterator<Endpoint> {
    return this.#map().values();
  }

  [Symbol.iterator](): MapIterator<[string, Endpoint]> {
    return this.#map().entries();
  }

  #map(): Map<string, Endpoint> {
    return new Map([[this.#endpoint.key, this.#endpoint]]);
  }
}
