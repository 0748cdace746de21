/** What the sweep needs of a connection (TcpForwarder). */
export interface IdleTracked {
  /** Sweeps since the last byte either way; the data path zeroes it on every read. */
  idleTicks: number;
  /** Whether it is already closing for idleness (closeIdle() was called once). */
  readonly idleClosing: boolean;
  closeIdle(): void;
}

/** Sweeps per idle timeout: a connection closes between 1 and 1 + 1/TICKS timeouts after its last byte. */
const TICKS = 4;
/** Bounds of the sweep interval: a short timeout (tests) is still swept, a long one at least once a minute. */
const MIN_TICK_MS = 25;
const MAX_TICK_MS = 60_000;

/**
 * The idle timeout of the TCP connections of one proxy socket: a single interval timer walks the
 * connections and closes those that saw no byte for the timeout. No timer per connection and
 * nothing done per read but zeroing a counter (TcpForwarder.idleTicks), so it costs the data
 * path nothing measurable; a sweep costs O(connections), once per tick (at most once a minute
 * for long timeouts).
 */
export class IdleSweep {
  readonly #connections: () => Iterable<IdleTracked>;
  #timeoutMs = 0;
  #tickMs = 0;
  /** Sweeps without a byte after which a connection is idle. */
  #ticks = 0;
  #timer: NodeJS.Timeout | undefined;

  /** connections: the live connections at each sweep. */
  constructor(connections: () => Iterable<IdleTracked>) {
    this.#connections = connections;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Sets the timeout (0 = off) and (re)starts the timer. Counts already accumulated are kept. */
  set(timeoutMs: number): void {
    if (timeoutMs === this.#timeoutMs && (this.#timer !== undefined || timeoutMs === 0)) return;
    this.stop();
    this.#timeoutMs = timeoutMs;
    if (timeoutMs <= 0) return;
    this.#tickMs = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(timeoutMs / TICKS)));
    this.#ticks = Math.max(1, Math.ceil(timeoutMs / this.#tickMs));
    this.#timer = setInterval(this.#sweep, this.#tickMs);
    // The listeners and connections keep the process alive; the sweep alone must not.
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  readonly #sweep = (): void => {
    const ticks = this.#ticks;
    for (const c of this.#connections()) {
      if (c.idleClosing) {
        // One tick of grace after the FIN: whatever is still open now is closed.
        c.closeIdle();
        continue;
      }
      // More than `ticks` sweeps: the first one may come just after the last byte.
      if (++c.idleTicks > ticks) c.closeIdle();
    }
  };
}
