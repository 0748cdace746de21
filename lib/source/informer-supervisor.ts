import { performance } from 'node:perf_hooks';
import { ListWatch } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { ClosedError } from '../errors.js';
import { hasMetadata, ObservedWatch } from '../internals/client-node-watch.js';
import { logger } from '../log.js';
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';
import { describeApiError } from './api-error.js';
import type { InformerSiblings, RetryableInformer } from './informer-siblings.js';

const log = logger('kubernetes');

/** Where a supervised informer delivers what it learns. Must not throw. */
export interface InformerSink {
  /** A complete list: the whole truth, to reconcile with. Called before the informer's own add/update/delete for it. */
  onList(items: readonly KubernetesObject[]): void;
  onUpsert(obj: KubernetesObject): void;
  onDelete(obj: KubernetesObject): void;
}

export interface InformerHealth {
  /** The last contact with the API server (list, watch connection or event) succeeded, and nothing failed since. */
  readonly connected: boolean;
  /** Wall-clock time (ms since the epoch) of the last successful list, watch connection or event; 0 before the first. */
  readonly lastSuccessMs: number;
  readonly lastError?: string;
  readonly lastErrorMs?: number;
  /** Restarts after errors plus watchdog relists. */
  readonly restarts: number;
  readonly watchdogRelists: number;
  /** The first complete list has been delivered. */
  readonly listed: boolean;
}

export interface InformerSupervisorOptions {
  /** Resource name for logs: `services`. */
  readonly resource: string;
  /** API path watched: `/api/v1/services`. */
  readonly path: string;
  /** Sent with every watch (the list function sends its own): `metadata.name=node-a`. */
  readonly fieldSelector?: string;
  readonly kubeConfig: KubeConfig;
  /** Lists every object; must honour the signal (stop, or the list timeout). */
  readonly list: (signal: AbortSignal) => Promise<KubernetesListObject<KubernetesObject>>;
  readonly sink: InformerSink;
  /** No successful list, watch connection or event for this long forces a relist. */
  readonly silenceBoundMs: number;
  readonly backoff?: BackoffOptions;
  /** A list taking longer than this is abandoned and counts as a failure (default 60 s). */
  readonly listTimeoutMs?: number;
  /** Called once, after the first complete list has been given to the sink. */
  readonly onFirstList?: () => void;
  /** A watch stream that lasted this long ended normally: re-watch without client-node's delay (default 60 s). */
  readonly longLivedWatchMs?: number;
  /** The other informers of the same API server: when this one recovers they retry at once, and the other way round. */
  readonly siblings?: InformerSiblings;
}

const DEFAULT_LIST_TIMEOUT_MS = 60_000;
/** A watch stream that lasted this long ended normally, not in a loop. */
const LONG_LIVED_WATCH_MS = 60_000;
const MAX_WATCHDOG_TICK_MS = 30_000;
const MIN_WATCHDOG_TICK_MS = 50;

/** One ListWatch and everything that must stop with it. */
interface Run {
  readonly lw: ListWatch<KubernetesObject>;
  readonly stop: AbortController;
  /** A restart after an error is pending. */
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Runs one client-node informer (ListWatch) and makes up for what it does not do itself:
 *
 * - After `error` a ListWatch stops for good. It is started again after a jittered exponential
 *   back-off (reset by a successful list or event, or by a failure after a healthy spell at least
 *   as long as the longest delay); since it keeps its resourceVersion, the restart resumes the
 *   watch, and a 410 makes it relist on its own.
 * - A watchdog replaces the ListWatch with a fresh one (a full relist) when nothing has succeeded
 *   for `silenceBoundMs`: client-node has no timeout on lists, and informers have been seen to
 *   stop silently (kubernetes-client/javascript#596). A healthy idle watch is re-made by client-node
 *   every 30 s, which counts as success, so with a bound above 30 s only a stuck informer trips it.
 * - Stopping is made airtight: client-node starts a watch after a list that was in flight when
 *   stop() was called, and fires `error` for the abort it causes; every callback here is tied to
 *   its run and ignored once the run is over.
 *
 * Lists are given to the sink whole (onList) so that it can reconcile, and an object present
 * before and after a relist is never seen as deleted.
 */
export class InformerSupervisor implements RetryableInformer {
  readonly #options: InformerSupervisorOptions;
  readonly #backoff: Backoff;
  readonly #listTimeoutMs: number;
  readonly #longLivedWatchMs: number;
  #run: Run | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;

  #connected = false;
  #everConnected = false;
  #disconnectedAtMs = 0;
  /** performance.now() when the informer last went from failing to connected. */
  #healthySince = 0;
  #lastSuccessMs = 0;
  /** performance.now() of the last success (or of the last watchdog action): the watchdog's clock. */
  #lastProgressAt = 0;
  #lastError: string | undefined;
  #lastErrorMs: number | undefined;
  #restarts = 0;
  #watchdogRelists = 0;
  #listed = false;

  constructor(options: InformerSupervisorOptions) {
    this.#options = options;
    this.#backoff = new Backoff(options.backoff);
    this.#listTimeoutMs = options.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
    this.#longLivedWatchMs = options.longLivedWatchMs ?? LONG_LIVED_WATCH_MS;
  }

  /** Starts listing and watching. Failures are retried for ever; see health(). */
  start(): void {
    if (this.#closed || this.#run) return;
    this.#options.siblings?.join(this);
    this.#lastProgressAt = performance.now();
    this.#startRun(this.#newRun());
    const tick = Math.min(MAX_WATCHDOG_TICK_MS, Math.max(MIN_WATCHDOG_TICK_MS, Math.floor(this.#options.silenceBoundMs / 4)));
    this.#watchdog = setInterval(() => this.#checkSilence(), tick);
    this.#watchdog.unref();
  }

  /** Stops the informer, its watch and its timers. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.siblings?.leave(this);
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    const run = this.#run;
    this.#run = undefined;
    if (run) await stopRun(run);
  }

  /**
   * A sibling reached the API server: a restart waiting out its back-off is made now. The back-off
   * is not reset, so if this informer still fails (its resource alone is broken) it keeps backing off.
   */
  retryNow(): void {
    const run = this.#run;
    if (this.#closed || !run?.restartTimer) return;
    clearTimeout(run.restartTimer);
    run.restartTimer = undefined;
    log.info('informer retrying at once, a sibling recovered', { resource: this.#options.resource });
    this.#startRun(run);
  }

  health(): InformerHealth {
    return {
      connected: this.#connected,
      lastSuccessMs: this.#lastSuccessMs,
      ...(this.#lastError === undefined ? {} : { lastError: this.#lastError, lastErrorMs: this.#lastErrorMs }),
      restarts: this.#restarts,
      watchdogRelists: this.#watchdogRelists,
      listed: this.#listed,
    };
  }

  #newRun(): Run {
    const stop = new AbortController();
    const isCurrent = (): boolean => !this.#closed && this.#run === run && !stop.signal.aborted;
    const watch = new ObservedWatch(this.#options.kubeConfig, stop.signal, {
      isCurrent,
      onConnected: () => this.#succeeded(run, false),
      onEvent: () => this.#succeeded(run, true),
      onMalformed: (phase, err) => log.warn('ignored malformed watch event', { resource: this.#options.resource, type: String(phase), ...(err ? { error: (err as Error).message } : {}) }),
    });
    const lw = new ListWatch<KubernetesObject>(this.#options.path, watch, () => this.#list(run), false, undefined, this.#options.fieldSelector, {
      // client-node waits between re-watches with an uncancellable timer; this one ends with the run.
      // Its delay grows (to 30 s) with every stream end that brought no event, which on a quiet
      // resource makes each routine close by the API server (--min-request-timeout, 30-60 min)
      // a longer blind spot. A watch that lived that long ended normally: re-watch at once. The
      // delay stays for streams that end early, which is what it protects against.
      delayFn: (ms) => (watch.lastStreamMs >= this.#longLivedWatchMs ? Promise.resolve() : delay(ms, stop.signal)),
    });
    const run: Run = { lw, stop, restartTimer: undefined };
    const sink = this.#options.sink;
    const forward = (what: string, fn: (obj: KubernetesObject) => void) => (obj: KubernetesObject) => {
      if (!isCurrent()) return;
      try {
        fn(obj);
      } catch (err) {
        // Thrown inside client-node's promise chain, it would become an unhandled rejection.
        log.error('informer handler failed', { resource: this.#options.resource, event: what, error: (err as Error).message });
      }
    };
    lw.on(
      'add',
      forward('add', (o) => sink.onUpsert(o)),
    );
    lw.on(
      'update',
      forward('update', (o) => sink.onUpsert(o)),
    );
    lw.on(
      'delete',
      forward('delete', (o) => sink.onDelete(o)),
    );
    lw.on('error', (err: unknown) => this.#failed(run, err));
    this.#run = run;
    return run;
  }

  #startRun(run: Run): void {
    run.lw.start().catch((err: unknown) => this.#failed(run, err));
  }

  async #list(run: Run): Promise<KubernetesListObject<KubernetesObject>> {
    // An error here stops the ListWatch before it opens a watch nobody would close.
    if (this.#run !== run || run.stop.signal.aborted) throw new ClosedError('informer run');
    const signal = AbortSignal.any([run.stop.signal, AbortSignal.timeout(this.#listTimeoutMs)]);
    const list = await this.#options.list(signal);
    if (this.#closed || this.#run !== run || run.stop.signal.aborted) throw new ClosedError('informer run');
    // client-node's cache dereferences metadata unguarded, outside any try: one item without it
    // would reject a promise nobody handles.
    const items = list.items ?? [];
    list.items = items.filter(hasMetadata);
    if (list.items.length !== items.length) {
      log.warn('ignored list items without metadata', { resource: this.#options.resource, count: items.length - list.items.length });
    }
    this.#succeeded(run, true);
    try {
      this.#options.sink.onList(list.items);
    } catch (err) {
      log.error('informer handler failed', { resource: this.#options.resource, event: 'list', error: (err as Error).message });
    }
    if (!this.#listed) {
      this.#listed = true;
      this.#options.onFirstList?.();
    }
    return list;
  }

  /** A list, a watch connection (progress=false: not enough to reset the back-off) or an event. */
  #succeeded(run: Run, progress: boolean): void {
    if (this.#closed || this.#run !== run) return;
    this.#lastSuccessMs = Date.now();
    this.#lastProgressAt = performance.now();
    if (progress) this.#backoff.reset();
    if (!this.#connected) {
      this.#connected = true;
      this.#healthySince = performance.now();
      if (this.#everConnected) {
        log.info('informer recovered', { resource: this.#options.resource, downMs: Date.now() - this.#disconnectedAtMs });
      }
      this.#everConnected = true;
      this.#options.siblings?.recovered(this);
    }
  }

  #failed(run: Run, err: unknown): void {
    if (this.#closed || this.#run !== run || run.stop.signal.aborted || run.restartTimer) return;
    const error = describeApiError(err);
    // A quiet watch brings no event to reset the back-off, yet one that worked for a while and then
    // failed is a new failure, not the next step of the last one. A stream that fails right after
    // connecting still backs off.
    if (this.#connected && performance.now() - this.#healthySince >= this.#backoff.maxMs) this.#backoff.reset();
    this.#markDisconnected(error);
    const { attempt, delayMs } = this.#backoff.next();
    this.#restarts++;
    log.warn('informer failed, restarting', { resource: this.#options.resource, attempt, delayMs, error });
    run.restartTimer = setTimeout(() => {
      run.restartTimer = undefined;
      if (!this.#closed && this.#run === run) this.#startRun(run);
    }, delayMs);
  }

  #checkSilence(): void {
    if (this.#closed || !this.#run) return;
    const silentMs = Math.round(performance.now() - this.#lastProgressAt);
    if (silentMs <= this.#options.silenceBoundMs) return;
    this.#watchdogRelists++;
    this.#restarts++;
    this.#markDisconnected(`no successful list, watch or event for ${silentMs} ms`);
    log.warn('informer silent, relisting', { resource: this.#options.resource, silentMs, boundMs: this.#options.silenceBoundMs });
    const old = this.#run;
    // The new run gets a whole bound before it is judged.
    this.#lastProgressAt = performance.now();
    // The back-off is not reset: if the server is down, the new run's failures keep backing off.
    this.#startRun(this.#newRun());
    void stopRun(old);
  }

  #markDisconnected(error: string): void {
    if (this.#connected || this.#disconnectedAtMs === 0) this.#disconnectedAtMs = Date.now();
    this.#connected = false;
    this.#lastError = error;
    this.#lastErrorMs = Date.now();
  }
}

async function stopRun(run: Run): Promise<void> {
  clearTimeout(run.restartTimer);
  run.restartTimer = undefined;
  run.stop.abort();
  await run.lw.stop().catch(() => {});
}

/** Resolves (never rejects: client-node does not catch it) after ms, or at once when signal aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
