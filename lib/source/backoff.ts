import { InvalidConfigError } from '../errors.js';

export interface BackoffOptions {
  /** First delay (default 1 s). */
  readonly initialMs?: number;
  /** Longest delay, jitter included (default 30 s). */
  readonly maxMs?: number;
  /** Each delay is moved at random by up to this fraction either way (default 0.2). */
  readonly jitter?: number;
  /** For tests: a source of numbers in [0, 1). */
  readonly random?: () => number;
}

export const DEFAULT_API_BACKOFF_INITIAL_MS = 1000;
export const DEFAULT_API_BACKOFF_MAX_MS = 30_000;
const DEFAULT_JITTER = 0.2;

/**
 * Exponential back-off with jitter: initialMs, doubling up to maxMs, each delay moved at random
 * by ±jitter so that many proxies restarted by one API server outage do not retry in lock-step.
 *
 * maxMs bounds the delay after jitter, not before: a cap that jitter may exceed by 20% is not
 * the cap operators were told about, and it is what a watch waits after the API server is back.
 * At the cap the delays still spread, over [maxMs × (1 − jitter), maxMs].
 */
export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    const initialMs = options.initialMs ?? DEFAULT_API_BACKOFF_INITIAL_MS;
    const maxMs = options.maxMs ?? Math.max(DEFAULT_API_BACKOFF_MAX_MS, initialMs);
    const jitter = options.jitter ?? DEFAULT_JITTER;
    const problems = Backoff.validate({ initialMs, maxMs, jitter });
    if (problems.length > 0) throw new InvalidConfigError(problems);
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
  }

  /** Every problem with the options, prefixed `backoff.`; empty when they are valid. */
  static validate(options: BackoffOptions): string[] {
    const problems: string[] = [];
    const { initialMs, maxMs, jitter } = options;
    if (initialMs !== undefined && (!Number.isFinite(initialMs) || initialMs <= 0)) problems.push(`backoff.initialMs: must be a number > 0, got ${initialMs}`);
    if (maxMs !== undefined && (!Number.isFinite(maxMs) || maxMs < (initialMs ?? DEFAULT_API_BACKOFF_INITIAL_MS))) {
      problems.push(`backoff.maxMs: must be a number >= initialMs (${initialMs ?? DEFAULT_API_BACKOFF_INITIAL_MS}), got ${maxMs}`);
    }
    if (jitter !== undefined && (!Number.isFinite(jitter) || jitter < 0 || jitter >= 1)) problems.push(`backoff.jitter: must be a number in [0, 1), got ${jitter}`);
    return problems;
  }

  /** The next attempt (1-based) and how long to wait before it. */
  next(): { attempt: number; delayMs: number } {
    this.#attempt++;
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt - 1, 52));
    const delayMs = Math.min(this.#maxMs, Math.max(0, Math.round(base * (1 + this.#jitter * (2 * this.#random() - 1)))));
    return { attempt: this.#attempt, delayMs };
  }

  /** After a success: the next failure waits initialMs again. */
  reset(): void {
    this.#attempt = 0;
  }

  /** The longest delay, jitter included. */
  get maxMs(): number {
    return this.#maxMs;
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }
}
