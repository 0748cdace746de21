import { numberToIPv4 } from '../config/service-ip-pool-cidr.js';
import type { ServiceIPPoolRange } from '../config/service-ip-pool-cidr.js';
import type { ServiceKey } from '../model/service-port-name.js';

/** The machine's own loopback address: its programs listen there, so a service never gets it. */
const HOST_LOOPBACK = 0x7f000001;

/**
 * Gives each service (by `namespace/name`) one address of --service-ip-pool, the same one across
 * restarts without any state on disk: the address is the pool slot a hash of the key points at
 * (FNV-1a, 32 bits), or on a collision the next free slot (linear probing). Two services whose
 * slots collide get the same addresses again as long as they are assigned in the same order; the
 * caller assigns the initial set in sorted key order for that reason, so only a service that
 * collided can ever move at a restart (the other one was deleted meanwhile, or it was added while
 * running and came before the other in sorted order). A state file
 * would close that gap but could go stale or unwritable; with a /16 (65,534 slots) and a few
 * hundred services, collisions are rare enough for the hash alone.
 */
export class ServiceIPPool {
  readonly #first: number;
  /** Usable slots: the pool without its network and broadcast addresses (pools of /30 and larger). */
  readonly #offset: number;
  readonly #slots: number;
  readonly #byKey = new Map<ServiceKey, number>();
  readonly #taken = new Set<number>();

  constructor(range: ServiceIPPoolRange) {
    this.#first = range.first;
    const edges = range.size >= 4 ? 1 : 0;
    this.#offset = edges;
    this.#slots = range.size - 2 * edges;
  }

  /** The service's address, assigned now if it has none; undefined when every address is taken. */
  assign(key: ServiceKey): string | undefined {
    const held = this.#byKey.get(key);
    if (held !== undefined) return numberToIPv4(held);
    const start = fnv1a(key) % this.#slots;
    for (let i = 0; i < this.#slots; i++) {
      const ip = this.#first + this.#offset + ((start + i) % this.#slots);
      if (this.#taken.has(ip) || ip === HOST_LOOPBACK) continue;
      this.#taken.add(ip);
      this.#byKey.set(key, ip);
      return numberToIPv4(ip);
    }
    return undefined;
  }

  /** The service's address, if it has one. */
  addressOf(key: ServiceKey): string | undefined {
    const held = this.#byKey.get(key);
    return held === undefined ? undefined : numberToIPv4(held);
  }

  /** Frees the service's address (the service is gone or no longer proxied). */
  release(key: ServiceKey): void {
    const held = this.#byKey.get(key);
    if (held === undefined) return;
    this.#byKey.delete(key);
    this.#taken.delete(held);
  }

  /** Whether assign() would find an address for a service that has none. */
  hasFree(): boolean {
    const hostLoopbackInside = HOST_LOOPBACK >= this.#first + this.#offset && HOST_LOOPBACK < this.#first + this.#offset + this.#slots;
    return this.#taken.size < this.#slots - (hostLoopbackInside ? 1 : 0);
  }

  get size(): number {
    return this.#byKey.size;
  }
}

/** FNV-1a over the UTF-8 bytes: tiny, fast and well spread for short keys; not for security. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
