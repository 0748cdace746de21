import type { KubeConfig } from '@kubernetes/client-node';
import { InvalidConfigError } from '../errors.js';

export interface RequestRateLimiterOptions {
  /** Requests per second in the long run (--kube-api-qps). */
  readonly qps: number;
  /** Requests allowed at once above that rate (--kube-api-burst). */
  readonly burst: number;
  /** Injected for tests: the clock in ms, and a wait. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * client-go's token bucket (flowcontrol.NewTokenBucketRateLimiter), which kube-proxy's
 * --kube-api-qps and --kube-api-burst configure: the bucket starts full with `burst` tokens,
 * refills at `qps` per second, and each request takes one, waiting its turn when none is left.
 * @kubernetes/client-node has no limiter of its own.
 */
export class RequestRateLimiter {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  /** Below zero: tokens already promised to waiting requests, so they go in the order they came. */
  #tokens: number;
  #last: number;
  #waiting = 0;

  constructor(options: RequestRateLimiterOptions) {
    const problems: string[] = [];
    if (!(options.qps > 0)) problems.push(`qps: must be above 0, got ${options.qps}`);
    if (!Number.isInteger(options.burst) || options.burst < 1) problems.push(`burst: must be a positive integer, got ${options.burst}`);
    if (problems.length > 0) throw new InvalidConfigError(problems);
    this.#qps = options.qps;
    this.#burst = options.burst;
    this.#now = options.now ?? Date.now;
    // Unref'd: a request waiting for its turn never holds up the process's exit.
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms).unref()));
    this.#tokens = options.burst;
    this.#last = this.#now();
  }

  /** Requests waiting for a token now. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Resolves when the caller may send one request. */
  async take(): Promise<void> {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#qps) / 1000);
    this.#last = now;
    this.#tokens -= 1;
    if (this.#tokens >= 0) return;
    this.#waiting++;
    try {
      await this.#sleep(Math.ceil((-this.#tokens * 1000) / this.#qps));
    } finally {
      this.#waiting--;
    }
  }

  /**
   * Makes every request of clients made from `kc` take a token first: the generated API clients
   * and Watch both call applySecurityAuthentication once per request, just before sending it.
   */
  limit(kc: KubeConfig): KubeConfig {
    const apply = kc.applySecurityAuthentication.bind(kc);
    kc.applySecurityAuthentication = async (context) => {
      await this.take();
      return apply(context);
    };
    return kc;
  }
}
