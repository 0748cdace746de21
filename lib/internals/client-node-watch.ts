import { performance } from 'node:perf_hooks';
import { RequestContext, Watch } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';

/**
 * client-node's Watch, made safe to stop, behind one module.
 *
 * Public API: Watch.watch() is overridden to observe connections and events and to refuse work once
 * the run is over. Not public: to abort a watch request the server has not answered yet, this relies
 * on Watch passing each request's RequestContext through KubeConfig.applySecurityAuthentication(),
 * which gives it an undici dispatcher of its own, before the request is sent. The probe below
 * checks that once; where it does not hold, the KubeConfig is used as it is, and a close() may
 * wait for an unanswered watch request to time out (client-node's 30 s) instead of ending it.
 */

export interface WatchHooks {
  readonly isCurrent: () => boolean;
  /** The watch request was answered 200. */
  readonly onConnected: () => void;
  /** A watch event (including BOOKMARK and ERROR) arrived. */
  readonly onEvent: () => void;
  /** A watch event could not be handled. */
  readonly onMalformed: (phase: string, err?: unknown) => void;
}

type WatchCallback = (phase: string, apiObj: any, watchObj?: any) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * client-node's Watch, observed (connection and events count as success for the watchdog) and
 * closed off: no request once the run is over, a watch answered after the run ended is aborted,
 * and an exception thrown before the request (credentials that cannot be read, say) becomes a
 * failed watch instead of an unhandled rejection inside the ListWatch.
 */
export class ObservedWatch extends Watch {
  readonly #hooks: WatchHooks;
  /** How long the last watch stream lasted, from its 200 answer to its end (0 when it never got one). */
  lastStreamMs = 0;

  /**
   * `stop` ends the run. A watch request the server has not answered yet cannot be aborted
   * through client-node (its AbortController is returned only once headers arrive, up to 30 s
   * later), but each request gets its own undici Agent from the KubeConfig: destroying that
   * aborts it, so that close() does not leave a connection (and the process) hanging.
   */
  constructor(kc: KubeConfig, stop: AbortSignal, hooks: WatchHooks) {
    super(DISPATCHER_TRACKING_WORKS ? dispatcherTracking(kc, stop) : kc);
    this.#hooks = hooks;
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: (err: unknown) => void): Promise<AbortController> {
    if (!this.#hooks.isCurrent()) return abortedController();
    let finished = false;
    let connectedAt: number | undefined;
    const onDone = (err: unknown): void => {
      finished = true;
      this.lastStreamMs = connectedAt === undefined ? 0 : performance.now() - connectedAt;
      done(err);
    };
    const onEvent: WatchCallback = (phase, obj, raw) => {
      if (!this.#hooks.isCurrent()) return;
      this.#hooks.onEvent();
      // The ListWatch's handler is async and dereferences obj and obj.metadata unguarded: a
      // malformed event would become an unhandled rejection, which ends the process.
      if (typeof obj !== 'object' || obj === null || (phase !== 'ERROR' && !hasMetadata(obj))) {
        this.#hooks.onMalformed(phase);
        return;
      }
      const result: unknown = callback(phase, obj, raw);
      if (result instanceof Promise) result.catch((err: unknown) => this.#hooks.onMalformed(phase, err));
    };
    let controller: AbortController;
    try {
      controller = await super.watch(path, queryParams, onEvent, onDone);
    } catch (err) {
      if (!finished) onDone(err);
      return abortedController();
    }
    if (!this.#hooks.isCurrent()) {
      controller.abort();
    } else if (!finished) {
      connectedAt = performance.now();
      this.#hooks.onConnected();
    }
    return controller;
  }
}

/** The KubeConfig, but every dispatcher it makes for a request is destroyed when `stop` aborts. */
function dispatcherTracking(kc: KubeConfig, stop: AbortSignal): KubeConfig {
  const live = new Set<Dispatcher>();
  stop.addEventListener(
    'abort',
    () => {
      for (const d of live) d.destroy().catch(() => {});
      live.clear();
    },
    { once: true },
  );
  const tracking = Object.create(kc) as KubeConfig;
  tracking.applySecurityAuthentication = async (ctx: RequestContext): Promise<void> => {
    await kc.applySecurityAuthentication(ctx);
    const d = ctx.getDispatcher();
    if (!d) return;
    if (stop.aborted) {
      d.destroy().catch(() => {});
      return;
    }
    live.add(d);
    // A finished (or failed) watch's agent is done with; close it, and its socket, now.
    const release = (): void => {
      live.delete(d);
      d.close().catch(() => {});
    };
    d.once('disconnect', release);
    d.once('connectionError', release);
  };
  return tracking;
}

/** An object with a metadata mapping: client-node dereferences it unguarded. */
export function hasMetadata(obj: unknown): boolean {
  const metadata = (obj as { metadata?: unknown } | null | undefined)?.metadata;
  return typeof metadata === 'object' && metadata !== null;
}

function abortedController(): AbortController {
  const c = new AbortController();
  c.abort();
  return c;
}

/**
 * Whether Watch.watch() hands its RequestContext to applySecurityAuthentication() before sending,
 * with a getDispatcher() to read the request's dispatcher from. Throwing from there ends the watch
 * before any connection is made, so the probe never touches the network.
 */
async function probe(): Promise<boolean> {
  const sentinel = new Error('probe');
  let seen = false;
  const config = {
    getCurrentCluster: () => ({ name: 'probe', server: 'http://127.0.0.1:9', skipTLSVerify: true }),
    applySecurityAuthentication: async (ctx: unknown): Promise<void> => {
      seen = ctx instanceof RequestContext && typeof ctx.getDispatcher === 'function';
      throw sentinel;
    },
  } as unknown as KubeConfig;
  try {
    await new Watch(config).watch(
      '/api/v1/namespaces',
      {},
      () => {},
      () => {},
    );
    return false;
  } catch (err) {
    return err === sentinel && seen;
  }
}

/** Whether ObservedWatch can end unanswered watch requests on stop in this client-node. */
export const DISPATCHER_TRACKING_WORKS: boolean = await probe();
