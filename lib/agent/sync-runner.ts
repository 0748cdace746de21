import PQueue from 'p-queue';
import { logger } from '../log.js';

export interface SyncRunnerOptions {
  /** The sync itself; runs are serialized, never concurrent. */
  readonly fn: () => Promise<void>;
  /** Shortest spacing of runs once the burst is used (kube-proxy's minSyncPeriod). */
  readonly minIntervalMs: number;
  /** A run happens at least this often even without run() calls (kube-proxy's syncPeriod). */
  readonly maxIntervalMs: number;
  /** Runs allowed back to back before minIntervalMs applies (kube-proxy uses 2). */
  readonly burst?: number;
}

const log = logger('sync');

/**
 * A bounded-frequency runner in the manner of kube-proxy's BoundedFrequencyRunner: run() requests
 * are coalesced (at most one run waits at a time, and it sees every change made before it starts),
 * runs are serialized, rate-limited to `burst` per minIntervalMs, and happen at least every
 * maxIntervalMs.
 */
export class SyncRunner {
  readonly #fn: () => Promise<void>;
  readonly #queue: PQueue;
  readonly #maxIntervalMs: number;
  #waiting = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #runs = 0;

  constructor(options: SyncRunnerOptions) {
    this.#fn = options.fn;
    this.#maxIntervalMs = options.maxIntervalMs;
    this.#queue =
      options.minIntervalMs > 0
        ? new PQueue({ concurrency: 1, interval: options.minIntervalMs, intervalCap: options.burst ?? 2 })
        : new PQueue({ concurrency: 1 });
  }

  /** Starts the periodic runs. */
  start(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setInterval(() => this.run(), this.#maxIntervalMs);
    this.#timer.unref();
  }

  /** Asks for a run as soon as the rate limit allows. */
  run(): void {
    if (this.#closed || this.#waiting) return;
    this.#waiting = true;
    void this.#queue.add(async () => {
      this.#waiting = false;
      if (this.#closed) return;
      try {
        await this.#fn();
      } catch (err) {
        log.error('sync failed', { error: err });
      } finally {
        this.#runs++;
      }
    });
  }

  /** Runs completed so far. */
  get runs(): number {
    return this.#runs;
  }

  /** Resolves when no run is waiting or running. */
  async idle(): Promise<void> {
    await this.#queue.onIdle();
  }

  /** Stops periodic runs and waits for a run in progress. Idempotent. */
  async close(): Promise<void> {
    this.destroy();
    await this.#queue.onIdle();
  }

  /** Stops at once; a run in progress finishes on its own. Idempotent. */
  destroy(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#queue.clear();
    this.#waiting = false;
  }
}
