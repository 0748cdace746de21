import { createRequire } from 'node:module';

/**
 * One optional Node-API addon of native/ (built at install time where a compiler is): loaded at its
 * first use, checked to export every function its module calls, and remembered either way, so a
 * missing addon costs one failed require per process, not one per port. `off` names the
 * environment variable that turns it off ('0').
 */
export class NativeAddon<B> {
  readonly #file: string;
  readonly #off: string;
  readonly #functions: readonly string[];
  /** undefined until the first use; then the binding, or null when there is none to use. */
  #binding: B | null | undefined;
  #reason = '';

  constructor(file: string, off: string, functions: readonly string[]) {
    this.#file = file;
    this.#off = off;
    this.#functions = functions;
  }

  /** The binding, or null (see unavailableReason). */
  get binding(): B | null {
    if (this.#binding === undefined) this.#binding = this.#load();
    return this.#binding;
  }

  /** Why the addon is not used ('' when it is). */
  get unavailableReason(): string {
    void this.binding;
    return this.#reason;
  }

  #load(): B | null {
    if (process.env[this.#off] === '0') {
      this.#reason = `${this.#off}=0`;
      return null;
    }
    try {
      // Relative to this module in dist/lib/internals/.
      const loaded = createRequire(import.meta.url)(`../../../native/build/Release/${this.#file}`) as Record<string, unknown>;
      const missing = this.#functions.filter((f) => typeof loaded[f] !== 'function');
      if (missing.length > 0) {
        this.#reason = `the addon lacks ${missing.join(', ')}`;
        return null;
      }
      return loaded as B;
    } catch (err) {
      this.#reason = `the addon did not load: ${(err as Error).message.split('\n')[0] ?? ''}`;
      return null;
    }
  }
}
