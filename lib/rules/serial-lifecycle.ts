import { ClosedError, RulesError } from '../errors.js';
import { teardownError } from './teardown-error.js';

/**
 * The lifecycle every rule backend (iptables, nftables, service addresses) shares: start() once,
 * sync() only while started, close() once, and every one of them in call order, never two at a time,
 * because each reads and rewrites kernel state the one before it left. A failed call does not stop
 * the queue: the next runs after it.
 */
export class SerialLifecycle {
  /** Names the backend in errors: `iptables rules`. */
  readonly #what: string;
  #state: 'new' | 'started' | 'closed' = 'new';
  #queue: Promise<unknown> = Promise.resolve();

  constructor(what: string) {
    this.#what = what;
  }

  /** Runs `begin` unless already started; refused after close. Not started when begin fails: start() may be called again. */
  start(begin: () => Promise<void>): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'closed') throw new ClosedError(this.#what);
      if (this.#state === 'started') return;
      await begin();
      this.#state = 'started';
    });
  }

  /** Runs `task` in turn; refused before start and after close. */
  sync<T>(task: () => Promise<T>): Promise<T> {
    return this.#serial(async () => {
      if (this.#state === 'closed') throw new ClosedError(this.#what);
      if (this.#state !== 'started') throw new RulesError(`${this.#what}: sync() before start()`);
      return task();
    });
  }

  /**
   * Closes once. When it had started, runs every step of the teardown even after one failed
   * (removing the rest is worth more than stopping early), then rejects with one RulesError naming
   * every failure. Idempotent; a backend that never started has nothing to remove. The steps are
   * asked for when the close runs, after every call queued before it.
   */
  close(teardown: () => Iterable<() => Promise<void>>): Promise<void> {
    return this.#serial(async () => {
      if (this.#state === 'closed') return;
      const wasStarted = this.#state === 'started';
      this.#state = 'closed';
      if (!wasStarted) return;
      const failures: unknown[] = [];
      for (const step of teardown()) await step().catch((err: unknown) => failures.push(err));
      if (failures.length > 0) throw teardownError(failures);
    });
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
