import { formatPortRange } from '../config/port-range.js';
import type { PortRange } from '../config/port-range.js';
import { PortAllocationError } from '../errors.js';
import type { PortAllocator } from './port-allocator.js';

/**
 * Allocates from --proxy-port-range. Like the legacy allocator it starts at a random offset and
 * scans linearly, so restarts do not reuse the same ports in the same order; unlike it, there is
 * no background filler goroutine and no 1 s wait: the used set is exact, so exhaustion is known at once.
 */
export class RangePortAllocator implements PortAllocator {
  readonly #range: PortRange;
  readonly #used = new Set<number>();
  readonly #random: () => number;

  constructor(range: PortRange, options: { random?: () => number } = {}) {
    this.#range = range;
    this.#random = options.random ?? Math.random;
  }

  allocateNext(): number {
    const { base, size } = this.#range;
    if (this.#used.size >= size) throw new PortAllocationError(formatPortRange(this.#range));
    const start = Math.floor(this.#random() * size);
    for (let i = 0; i < size; i++) {
      const port = base + ((start + i) % size);
      if (!this.#used.has(port)) {
        this.#used.add(port);
        return port;
      }
    }
    throw new PortAllocationError(formatPortRange(this.#range));
  }

  release(port: number): void {
    this.#used.delete(port);
  }

  /** Ports currently handed out (for status and tests). */
  get usedCount(): number {
    return this.#used.size;
  }
}
