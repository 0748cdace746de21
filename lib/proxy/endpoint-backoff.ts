import { InvalidConfigError } from '../errors.js';

export interface EndpointBackoffOptions {
  /** Back-off after a first failure. Default 1000 ms. */
  readonly initialMs?: number;
  /** Ceiling of the doubling. Default 10000 ms. */
  readonly maxMs?: number;
  /**
   * Most endpoints remembered at once. Past it the endpoint whose last failure is oldest is
   * forgotten, so a churn of dead pod IPs cannot grow memory without bound. Default 10000.
   */
  readonly maxEntries?: number;
  /** Clock in milliseconds, as Date.now (tests inject one). */
  readonly now?: () => number;
}

export const DEFAULT_ENDPOINT_BACKOFF_INITIAL_MS = 1000;
export const DEFAULT_ENDPOINT_BACKOFF_MAX_MS = 10_000;
export const DEFAULT_ENDPOINT_BACKOFF_MAX_ENTRIES = 10_000;

interface Entry {
  /** The endpoint is avoided until this time. */
  untilMs: number;
  /** The back-off that produced untilMs; the next failure after it doubles this. */
  delayMs: number;
  /** After this time the failure history is dropped and the next failure starts from initialMs. */
  forgetAtMs: number;
}

/**
 * Endpoints that recently failed to answer (refused, timed out, unreachable), shared by every
 * proxy socket so that a dead pod is skipped by all the services that route to it.
 *
 * A failure backs the endpoint off for initialMs; a failure seen after that back-off expired
 * (the first real connection to probe it again failed) doubles it, up to maxMs; a success forgets
 * it. Failures reported while the endpoint is already backed off do not double: they are the same
 * outage seen by connections that were already dialing, and counting each of them would jump
 * straight to maxMs under load.
 */
export class EndpointBackoff {
  /** Ordered by last failure (delete + set), so the head is the first to expire. */
  readonly #entries = new Map<string, Entry>();
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: EndpointBackoffOptions = {}) {
    const { initialMs = DEFAULT_ENDPOINT_BACKOFF_INITIAL_MS, maxMs = DEFAULT_ENDPOINT_BACKOFF_MAX_MS, maxEntries = DEFAULT_ENDPOINT_BACKOFF_MAX_ENTRIES, now = Date.now } = options;
    const problems: string[] = [];
    if (!Number.isFinite(initialMs) || initialMs <= 0) problems.push(`initialMs must be a positive number, got ${String(initialMs)}`);
    if (!Number.isFinite(maxMs) || maxMs < initialMs) problems.push(`maxMs must be a number >= initialMs, got ${String(maxMs)}`);
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) problems.push(`maxEntries must be a positive integer, got ${String(maxEntries)}`);
    if (typeof now !== 'function') problems.push('now must be a function');
    if (problems.length > 0) throw new InvalidConfigError(problems);
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#maxEntries = maxEntries;
    this.#now = now;
  }

  /** Records a failure of the endpoint; returns how long it is now backed off (ms from now). */
  fail(key: string): number {
    const now = this.#now();
    const entries = this.#entries;
    const entry = entries.get(key);
    if (entry !== undefined && now < entry.untilMs) return entry.untilMs - now;

    const delayMs = entry !== undefined && now < entry.forgetAtMs ? Math.min(entry.delayMs * 2, this.#maxMs) : this.#initialMs;
    const untilMs = now + delayMs;
    // Remember the history for maxMs after the back-off ends: a failure within that window is the
    // same endpoint still failing, one after it is treated as a new outage.
    const fresh: Entry = { untilMs, delayMs, forgetAtMs: untilMs + this.#maxMs };
    if (entry !== undefined) entries.delete(key);
    entries.set(key, fresh);
    this.#prune(now);
    return delayMs;
  }

  /** Records a success: the endpoint's history is dropped. */
  ok(key: string): void {
    // Called for every successful dial: skip the hash lookup in the common, healthy case.
    if (this.#entries.size !== 0) this.#entries.delete(key);
  }

  /** Whether the endpoint should be avoided now. */
  isBackedOff(key: string): boolean {
    if (this.#entries.size === 0) return false;
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    const now = this.#now();
    if (now < entry.untilMs) return true;
    if (now >= entry.forgetAtMs) this.#entries.delete(key);
    return false;
  }

  /** Endpoints currently remembered (backed off, or recently so): for metrics and tests. */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops expired entries from the head, then the oldest ones beyond maxEntries. */
  #prune(now: number): void {
    const entries = this.#entries;
    // Entries are in order of last failure and delays differ, so expiry order is only roughly the
    // head-first order; stopping at the first live entry keeps fail() O(1) amortised, and the
    // maxEntries cap bounds whatever the rough order leaves behind.
    for (const [key, entry] of entries) {
      if (now < entry.forgetAtMs) break;
      entries.delete(key);
    }
    while (entries.size > this.#maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done === true) break;
      entries.delete(oldest.value);
    }
  }
}
