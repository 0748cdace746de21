/**
 * Lets at most one log line through per interval, counting the ones held back, for events that
 * can arrive in floods on the data path (every dial to a dead service failing, accept failing
 * with EMFILE): one line a second says as much as ten thousand and keeps the log usable.
 */
export class LogThrottle {
  readonly #intervalMs: number;
  readonly #now: () => number;
  #nextAtMs = 0;
  #suppressed = 0;

  constructor(intervalMs = 1000, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /**
   * When a line may be logged now: how many were suppressed since the last one (0 or more).
   * Otherwise -1, and the caller must not log.
   */
  take(): number {
    const now = this.#now();
    if (now < this.#nextAtMs) {
      this.#suppressed++;
      return -1;
    }
    this.#nextAtMs = now + this.#intervalMs;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}
