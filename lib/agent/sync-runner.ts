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
 * runs are serialized, and happen at least every maxIntervalMs.
 *
 * The rate limit is kube-proxy's: a token bucket of `burst` tokens refilled at one per
 * minIntervalMs, one token per run. So the first change after a quiet period runs at once, a burst
 * of changes costs at most `burst` runs back to back, and then runs are minIntervalMs apart. A run
 * that must wait is scheduled for when its token is there, not for the end of a fixed window.
 */
export class SyncRunner {
  readonly #fn: () => Promise<void>;
  readonly #minIntervalMs: number;
  readonly #maxIntervalMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #refilledAt = performance.now();
  /** A run is requested and has not started yet. */
  #pending = false;
  #running: Promise<void> | undefined;
  /** The wait for the next token. */
  #limitTimer: NodeJS.Timeout | undefined;
  #periodic: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #runs = 0;
  #lastQueuedMs: number | undefined;
  #idleWaiters: (() => void)[] = [];

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
   * When run() was last called (ms since the epoch); undefined before. The periodic runs are not
   * requests and leave it alone, so that a gap between it and the end of the last run shows a
   * change waiting for a sync that does not come.
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
    if (!this.#pending && this.#running === undefined) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops periodic runs and waits for a run in progress. Idempotent. */
  async close(): Promise<void> {
    this.destroy();
    await this.idle();
  }

  /** Stops at once; a run in progress finishes on its own. Idempotent. */
  destroy(): void {
    this.#closed = true;
    this.#pending = false;
    if (this.#limitTimer) clearTimeout(this.#limitTimer);
    if (this.#periodic) clearTimeout(this.#periodic);
    this.#limitTimer = this.#periodic = undefined;
    this.#settleIdle();
  }

  #request(): void {
    this.#pending = true;
    // A run in progress, or one waiting for its token, takes this request when it gets there.
    if (this.#running !== undefined || this.#limitTimer !== undefined) return;
    this.#tryRun();
  }

  #tryRun(): void {
    if (this.#closed || !this.#pending || this.#running !== undefined) return;
    const waitMs = this.#takeToken();
    if (waitMs > 0) {
      this.#limitTimer = setTimeout(() => {
        this.#limitTimer = undefined;
        this.#tryRun();
      }, waitMs);
      return;
    }
    this.#pending = false;
    this.#running = this.#runOnce();
  }

  async #runOnce(): Promise<void> {
    try {
      await this.#fn();
    } catch (err) {
      log.error('sync failed', { error: err });
    } finally {
      this.#runs++;
      this.#running = undefined;
      // As kube-proxy's runner, the longest gap is counted from the last run.
      if (this.#started && !this.#closed) this.#armPeriodic();
      if (this.#pending && !this.#closed) this.#request();
      else this.#settleIdle();
    }
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

  #settleIdle(): void {
    if (this.#pending || this.#running !== undefined) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
