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
  /** The clock of lastQueuedMs; Date.now by default. */
  readonly now?: () => number;
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
  readonly #now: () => number;
  #lastQueuedMs: number | undefined;

  constructor(options: SyncRunnerOptions) {
    this.#fn = options.fn;
    this.#maxIntervalMs = options.maxIntervalMs;
    this.#now = options.now ?? Date.now;
    this.#queue = options.minIntervalMs > 0 ? new PQueue({ concurrency: 1, interval: options.minIntervalMs, intervalCap: options.burst ?? 2 }) : new PQueue({ concurrency: 1 });
  }

  /** Starts the periodic runs. */
  start(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setInterval(() => this.#enqueue(), this.#maxIntervalMs);
    this.#timer.unref();
  }

  /**
   * Asks for a run as soon as the rate limit allows, and notes the time of the request (also when
   * it joins a run already waiting), as kube-proxy's Sync() does.
   */
  run(): void {
    if (this.#closed) return;
    this.#lastQueuedMs = this.#now();
    this.#enqueue();
  }

  /**
   * When run() was last called (ms since the epoch); undefined before. The periodic runs are not
   * requests and leave it alone, so that a gap between it and the end of the last run shows a
   * change waiting for a sync that does not come.
   */
  get lastQueuedMs(): number | undefined {
    return this.#lastQueuedMs;
  }

  #enqueue(): void {
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
