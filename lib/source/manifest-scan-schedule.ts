import { logger } from '../log.js';

const log = logger('manifests');

/** A steady stream of events must not postpone a rescan for ever: at most this long (or debounceMs, if longer). */
const MAX_DEBOUNCE_MS = 500;

export interface ManifestScanScheduleOptions {
  /** Quiet time after the last event before a rescan. */
  readonly debounceMs: number;
  /** Period of the rescan that catches events fs.watch missed; 0 turns it off. */
  readonly rescanIntervalMs: number;
  /** The full rescan. */
  readonly rescan: () => Promise<void>;
  /** Reads the files events named, for what they add. */
  readonly readNamed: (files: string[]) => Promise<void>;
}

/**
 * When the manifests are read: the files an event names at once, and everything again once the
 * events have been quiet for debounceMs (editors save with several events in a burst: write a
 * temporary file, rename it, chmod) and every rescanIntervalMs. One reading at a time; what comes
 * due during one runs after it. Readings wait while blocked (the initial load).
 */
export class ManifestScanSchedule {
  readonly #o: ManifestScanScheduleOptions;
  #debounceTimer: NodeJS.Timeout | undefined;
  #firstEventAt: number | undefined;
  #interval: NodeJS.Timeout | undefined;
  /** The reading in progress. */
  #running: Promise<void> | undefined;
  /** Readings wait (see block()). */
  #blocked = false;
  /** Files named by events since the last reading. */
  readonly #named = new Set<string>();
  /** The events have been quiet (or the periodic rescan is due): a rescan is to run. */
  #rescanDue = false;
  #closed = false;

  constructor(options: ManifestScanScheduleOptions) {
    this.#o = options;
  }

  /** The reading in progress, if any. */
  get running(): Promise<void> | undefined {
    return this.#running;
  }

  /** Starts the periodic rescan. */
  start(): void {
    if (this.#closed || this.#interval || this.#o.rescanIntervalMs === 0) return;
    this.#interval = setInterval(() => {
      this.#rescanDue = true;
      void this.#run();
    }, this.#o.rescanIntervalMs);
  }

  /** Holds every reading until the returned function is called; then what came due meanwhile runs. */
  block(): () => void {
    this.#blocked = true;
    return () => {
      this.#blocked = false;
      void this.#run();
    };
  }

  /** An event: a file it names is read at once (`now`), and a rescan follows once the events are quiet. */
  event(file: string | undefined, now: boolean): void {
    if (this.#closed) return;
    if (file !== undefined && now) {
      this.#named.add(file);
      void this.#run();
    }
    const at = Date.now();
    this.#firstEventAt ??= at;
    clearTimeout(this.#debounceTimer);
    const { debounceMs } = this.#o;
    const wait = Math.max(0, Math.min(debounceMs, this.#firstEventAt + Math.max(debounceMs, MAX_DEBOUNCE_MS) - at));
    this.#debounceTimer = setTimeout(() => {
      this.#debounceTimer = undefined;
      this.#firstEventAt = undefined;
      this.#rescanDue = true;
      void this.#run();
    }, wait);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#debounceTimer);
    clearInterval(this.#interval);
    this.#debounceTimer = undefined;
    this.#interval = undefined;
  }

  /** Runs readings while one is due: a rescan first, else the named files. Never rejects. */
  async #run(): Promise<void> {
    if (this.#closed || this.#running || this.#blocked) return;
    const loop = async (): Promise<void> => {
      while (!this.#closed) {
        try {
          if (this.#rescanDue) {
            this.#rescanDue = false;
            this.#named.clear();
            await this.#o.rescan();
          } else if (this.#named.size > 0) {
            const files = [...this.#named];
            this.#named.clear();
            await this.#o.readNamed(files);
          } else {
            break;
          }
        } catch (err) {
          log.error('manifest rescan failed', { error: (err as Error).message });
        }
      }
    };
    const running = loop();
    this.#running = running;
    await running;
    if (this.#running === running) this.#running = undefined;
  }
}
