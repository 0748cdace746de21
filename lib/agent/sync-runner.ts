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
 * runs are serialized (a p-queue of concurrency 1), and happen at least every maxIntervalMs.
 *
 * The rate limit is kube-proxy's: a token bucket of `burst` tokens refilled at one per
 * minIntervalMs, one token per run. So the first change after a quiet period runs at once, a burst
 * of changes costs at most `burst` runs back to back, and then runs are minIntervalMs apart. A run
 * that must wait waits in the queue for its token, not for the end of a fixed window (p-queue's own
 * interval limit is a fixed window, which would hold the first change after a quiet period).
 */
export class SyncRunner {
  readonly #fn: () => Promise<void>;
  readonly #queue = new PQueue({ concurrency: 1 });
  readonly #minIntervalMs: number;
  readonly #maxIntervalMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #refilledAt = performance.now();
  /** A run is queued and has not started its sync yet: later requests join it. */
  #waiting = false;
  /** The wait for the next token, cancelled by destroy(). */
  #tokenWait: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  #periodic: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #runs = 0;
  #lastQueuedMs: number | undefined;

  constructor(options: SyncRunnerOptions) {
    this.#fn = options.fn;
    this.#minIntervalMs = Math.max(0, options.minIntervalMs);
    this.#maxIntervalMs = options.maxIntervalMs;
    this.#burst = Math.max(1, options.burst ?? 2);
    this.#tokens = this.#burst;
    this.#now = options.now ?? Date.now;
  }

  /** Starts the periodic runs. */
  start(): void {
    if (this.#closed || this.#started) return;
    this.#started = true;
    this.#armPeriodic();
  }

  /**
   * Asks for a run as soon as the rate limit allows, and notes the time of the request (also when
   * it joins a run already waiting), as kube-proxy's Sync() does.
   */
  run(): void {
    if (this.#closed) return;
    this.#lastQueuedMs = this.#now();
    this.#request();
  }

  /**
   * When the last run() was requested (ms, from the `now` clock), for sync-latency metrics; undefined
   * before the first request.
   */
  get lastQueuedMs(): number | undefined {
    return this.#lastQueuedMs;
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
    if (this.#periodic) clearTimeout(this.#periodic);
    this.#periodic = undefined;
    this.#queue.clear();
    this.#waiting = false;
    if (this.#tokenWait) {
      clearTimeout(this.#tokenWait.timer);
      this.#tokenWait.resolve();
      this.#tokenWait = undefined;
    }
  }

  #request(): void {
    if (this.#closed || this.#waiting) return;
    this.#waiting = true;
    void this.#queue.add(async () => {
      // A token that is there is taken in the same turn as the sync starts: a request to an idle
      // runner with a token runs within the call, as kube-proxy's runner does.
      for (let waitMs = this.#takeToken(); waitMs > 0 && !this.#closed; waitMs = this.#takeToken()) await this.#sleepForToken(waitMs);
      this.#waiting = false;
      if (this.#closed) return;
      try {
        await this.#fn();
      } catch (err) {
        log.error('sync failed', { error: err });
      } finally {
        this.#runs++;
        // As kube-proxy's runner, the longest gap is counted from the last run.
        if (this.#started && !this.#closed) this.#armPeriodic();
      }
    });
  }

  /** Waits for waitMs, or until the runner is destroyed. */
  async #sleepForToken(waitMs: number): Promise<void> {
    await new Promise<void>((resolve) => (this.#tokenWait = { timer: setTimeout(resolve, waitMs), resolve }));
    this.#tokenWait = undefined;
  }

  /** Takes a token and answers 0, or answers how long until there is one. With no minimum interval there is always one. */
  #takeToken(): number {
    if (this.#minIntervalMs === 0) return 0;
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#refilledAt) / this.#minIntervalMs);
    this.#refilledAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - this.#tokens) * this.#minIntervalMs);
  }

  #armPeriodic(): void {
    if (this.#periodic) clearTimeout(this.#periodic);
    this.#periodic = setTimeout(() => {
      this.#periodic = undefined;
      if (this.#closed) return;
      this.#armPeriodic();
      this.#request();
    }, this.#maxIntervalMs);
    this.#periodic.unref();
  }
}
