/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives the same sequence, so a
 * generated case that fails can be replayed from the seed printed with it.
 */
export class SeededRandom {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A non-empty random subset, in the original order. */
  subset<T>(items: readonly T[]): T[] {
    const chosen = items.filter(() => this.next() < 0.5);
    return chosen.length > 0 ? chosen : [this.pick(items)];
  }
}
