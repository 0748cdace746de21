import net from 'node:net';
import type { LoadBalancer } from '../../balancer/load-balancer.js';
import { InvalidConfigError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Endpoint } from '../../model/endpoint.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import { isLocalResourceError } from '../descriptor-budget.js';
import type { EndpointBackoff } from '../endpoint-backoff.js';
import type { ConnectResult, PendingConnect } from '../endpoint-connector.js';
import { pickEndpoint } from '../pick-endpoint.js';
import type { EndpointStats, ProxyStats } from '../proxy-stats.js';
import { UPSTREAM_WRITE_HIGH_WATER_MARK } from './tcp-forwarder.js';

/** The legacy proxier's connect timeouts: 4 attempts, at most 3.75 s in all. */
export const DEFAULT_DIAL_TIMEOUTS_MS: readonly number[] = Object.freeze([250, 500, 1000, 2000]);

export type DialOutcome<S = net.Socket> =
  /** endpointStats: the endpoint's counters (total already counted), for the forwarder's active count. */
  | { readonly kind: 'connected'; readonly socket: S; readonly endpoint: Endpoint; readonly endpointStats: EndpointStats; readonly attempts: number }
  /** The port has no endpoint (at the first attempt, or they all went away between attempts). */
  | { readonly kind: 'no-endpoint'; readonly attempts: number }
  /** Every attempt failed; reason is the last failure's error code, or 'ETIMEDOUT'. */
  | { readonly kind: 'failed'; readonly attempts: number; readonly endpoint: Endpoint; readonly reason: string }
  /**
   * This host could not open the upstream socket (out of descriptors, buffers, memory or ephemeral
   * ports): counted in stats.localResourceErrors, not against the endpoint, and not retried (the
   * next attempt would meet the same shortage).
   */
  | { readonly kind: 'local-error'; readonly attempts: number; readonly endpoint: Endpoint; readonly reason: string };

/**
 * Another way than net.connect to make one attempt (EndpointConnector for --dial-via; libuv
 * handles on the fast path): the Dialer still picks endpoints, retries and counts failures.
 */
export interface UpstreamConnector<S> {
  /** One timeout per attempt, when this way of connecting needs other ones than a TCP connect's. */
  readonly dialTimeoutsMs?: readonly number[];
  /** One attempt, given up after timeoutMs; done is called once, asynchronously, unless cancelled. */
  connect(endpoint: Endpoint, timeoutMs: number, onread: net.OnReadOpts | undefined, done: (result: ConnectResult<S>) => void): PendingConnect;
}

export interface DialerOptions<S = net.Socket> {
  readonly spn: ProxySocketKey;
  readonly balancer: LoadBalancer;
  readonly backoff: EndpointBackoff;
  readonly stats: ProxyStats;
  /** One connect timeout per attempt. Default DEFAULT_DIAL_TIMEOUTS_MS. */
  readonly timeoutsMs?: readonly number[];
  readonly log: Logger;
  /** Make each attempt this way instead of net.connect (--dial-via, or the fast path's handles). */
  readonly connector?: UpstreamConnector<S> | undefined;
}

/** A dial in progress; cancel() abandons it (its callback is then never called). */
export interface PendingDial {
  cancel(): void;
}

/**
 * Errors that say something about this host (out of descriptors, memory or ephemeral ports), not
 * about the endpoint: the dial ends there, the endpoint is neither blamed nor backed off.
 */
function isLocalError(reason: string): boolean {
  return isLocalResourceError(reason) || reason === 'EADDRNOTAVAIL';
}

/**
 * The dial timeouts to use (the default when undefined), checked; a frozen list (the default, or
 * one checked before) is shared rather than copied per port.
 */
export function dialTimeouts(timeoutsMs: readonly number[] = DEFAULT_DIAL_TIMEOUTS_MS): readonly number[] {
  if (timeoutsMs === DEFAULT_DIAL_TIMEOUTS_MS) return timeoutsMs; // checked once, not for each port
  if (!Array.isArray(timeoutsMs) || timeoutsMs.length === 0 || !timeoutsMs.every((t) => Number.isSafeInteger(t) && t > 0)) {
    throw new InvalidConfigError([`dial timeouts must be a non-empty list of positive integers (ms), got ${JSON.stringify(timeoutsMs)}`]);
  }
  return Object.isFrozen(timeoutsMs) ? timeoutsMs : Object.freeze([...timeoutsMs]);
}

/**
 * Connects new client connections of one service port to an endpoint, with escalating timeouts,
 * re-picking after each failure. Entirely callback driven: a slow or black-holed endpoint delays
 * only the connection dialing it, never the accept loop (the legacy proxier dialed synchronously
 * inside its accept loop, so one dead endpoint stalled every new client of the service).
 */
export class Dialer<S = net.Socket> {
  readonly spn: ProxySocketKey;
  readonly balancer: LoadBalancer;
  readonly backoff: EndpointBackoff;
  readonly stats: ProxyStats;
  readonly timeoutsMs: readonly number[];
  readonly log: Logger;
  readonly connector: UpstreamConnector<S> | undefined;

  constructor(options: DialerOptions<S>) {
    this.spn = options.spn;
    this.balancer = options.balancer;
    this.backoff = options.backoff;
    this.stats = options.stats;
    this.timeoutsMs = dialTimeouts(options.timeoutsMs);
    this.log = options.log;
    this.connector = options.connector;
  }

  /**
   * Starts dialing for a client; done is called exactly once, asynchronously, unless cancelled.
   * onread, if given, is the upstream socket's read handling (net.connect's onread option).
   */
  dial(clientIP: string, done: (outcome: DialOutcome<S>) => void, onread?: net.OnReadOpts): PendingDial {
    return new Dial<S>(this, clientIP, done, onread);
  }
}

function ignore(): void {}

/** One client's dial: at most one upstream socket in flight at a time. */
class Dial<S> implements PendingDial {
  readonly #dialer: Dialer<S>;
  readonly #clientIP: string;
  readonly #done: (outcome: DialOutcome<S>) => void;
  readonly #onread: net.OnReadOpts | undefined;
  #attempts = 0;
  #socket: net.Socket | undefined;
  /** The connector's attempt in flight (with a connector only). */
  #pending: PendingConnect | undefined;
  #endpoint: Endpoint | undefined;
  /** No outcome is pending any more (one was delivered or scheduled, or the dial was cancelled). */
  #over = false;
  #cancelled = false;

  constructor(dialer: Dialer<S>, clientIP: string, done: (outcome: DialOutcome<S>) => void, onread: net.OnReadOpts | undefined) {
    this.#dialer = dialer;
    this.#clientIP = clientIP;
    this.#done = done;
    this.#onread = onread;
    this.#attempt(false);
  }

  cancel(): void {
    this.#cancelled = true;
    if (this.#over) return;
    this.#over = true;
    const s = this.#socket;
    this.#socket = undefined;
    if (s !== undefined) this.#abandon(s);
    this.#pending?.cancel();
    this.#pending = undefined;
  }

  #attempt(reset: boolean): void {
    const d = this.#dialer;
    const ep = pickEndpoint(d.balancer, d.backoff, d.spn, this.#clientIP, reset);
    if (ep === undefined) {
      // Asynchronous like every other outcome, so callers never see done() before dial() returns.
      this.#over = true;
      const attempts = this.#attempts;
      process.nextTick(() => {
        if (!this.#cancelled) this.#done({ kind: 'no-endpoint', attempts });
      });
      return;
    }
    if (this.#attempts > 0) d.stats.dialRetries++;
    const timeout = d.timeoutsMs[this.#attempts++] as number;
    this.#endpoint = ep;
    if (d.connector !== undefined) {
      this.#pending = d.connector.connect(ep, timeout, this.#onread, this.#onConnected);
      return;
    }
    // An IP literal: net skips the resolver, so there is no DNS lookup per connection.
    // writableHighWaterMark: a public (Duplex) option of net.Socket that @types/node does not list.
    const s = net.connect({
      host: ep.ip,
      port: ep.port,
      noDelay: true,
      allowHalfOpen: true,
      timeout,
      writableHighWaterMark: UPSTREAM_WRITE_HIGH_WATER_MARK,
      onread: this.#onread,
    } as net.NetConnectOpts);
    this.#socket = s;
    s.once('connect', this.#onConnect);
    s.once('timeout', this.#onTimeout);
    s.once('error', this.#onError);
  }

  /** Drops a socket we no longer want: its late events must not reach this dial. */
  #abandon(s: net.Socket): void {
    s.removeListener('connect', this.#onConnect);
    s.removeListener('timeout', this.#onTimeout);
    s.removeListener('error', this.#onError);
    s.on('error', ignore);
    s.destroy();
  }

  // Arrow properties rather than methods: they are handed to the socket as listeners, and a dial
  // needs exactly these three for all its attempts.
  readonly #onConnect = (): void => {
    const s = this.#socket as net.Socket;
    const ep = this.#endpoint as Endpoint;
    s.removeListener('timeout', this.#onTimeout);
    s.removeListener('error', this.#onError);
    s.setTimeout(0);
    this.#socket = undefined;
    // Without a connector S is net.Socket.
    this.#connected(s as unknown as S, ep);
  };

  readonly #onConnected = (result: ConnectResult<S>): void => {
    this.#pending = undefined;
    if (this.#over) return;
    if (result.kind === 'connected') this.#connected(result.socket, this.#endpoint as Endpoint);
    else this.#failed(result.reason);
  };

  #connected(s: S, ep: Endpoint): void {
    this.#over = true;
    this.#dialer.backoff.ok(ep.key);
    const endpointStats = this.#dialer.stats.endpoint(ep.key);
    endpointStats.total++;
    this.#done({ kind: 'connected', socket: s, endpoint: ep, endpointStats, attempts: this.#attempts });
  }

  readonly #onTimeout = (): void => {
    // Timers run before I/O callbacks in an event-loop turn: after a long pause of the loop (GC, a
    // busy machine) the timeout can fire in the very turn whose I/O phase holds the completed
    // connect. Give I/O that turn before calling the endpoint dead, or load alone would fail dials.
    const s = this.#socket;
    setImmediate(() => {
      if (this.#socket !== s || s === undefined || this.#over) return;
      this.#socket = undefined;
      this.#abandon(s);
      this.#failed('ETIMEDOUT');
    });
  };

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    const s = this.#socket as net.Socket;
    this.#socket = undefined;
    this.#abandon(s);
    this.#failed(err.code ?? err.message);
  };

  #failed(reason: string): void {
    const d = this.#dialer;
    const ep = this.#endpoint as Endpoint;
    if (isLocalError(reason)) {
      d.stats.localResourceErrors++;
      this.#over = true;
      this.#done({ kind: 'local-error', attempts: this.#attempts, endpoint: ep, reason });
      return;
    }
    d.stats.dialFailures++;
    d.stats.endpoint(ep.key).dialFailures++;
    const backoffMs = d.backoff.fail(ep.key);
    if (d.log.isDebugEnabled()) {
      d.log.debug('dial failed', { service: d.spn, endpoint: ep.key, client: this.#clientIP, attempt: this.#attempts, reason, backoffMs });
    }
    if (this.#attempts < d.timeoutsMs.length) {
      this.#attempt(true);
      return;
    }
    this.#over = true;
    this.#done({ kind: 'failed', attempts: this.#attempts, endpoint: ep, reason });
  }
}
