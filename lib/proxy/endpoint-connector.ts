import type net from 'node:net';
import type { Endpoint } from '../model/endpoint.js';

/** How one attempt to reach an endpoint ended: a connected stream, or the reason it failed. */
export type ConnectResult<S = net.Socket> =
  | { readonly kind: 'connected'; readonly socket: S }
  /** reason: an error code (ECONNREFUSED, ETIMEDOUT) or a short phrase; counted as the endpoint's failure. */
  | { readonly kind: 'failed'; readonly reason: string };

/** A connection attempt in progress; cancel() abandons it (done is then never called). */
export interface PendingConnect {
  cancel(): void;
}

/**
 * Another way than a TCP connection to the endpoint's IP to reach it (the Dialer's seam for
 * `--dial-via`): the Dialer still picks endpoints, retries with failover and counts failures;
 * the connector only makes one attempt at a time.
 *
 * The stream handed back must behave as the net.Socket the TCP forwarder expects of an upstream:
 * made with allowHalfOpen, reads delivered through `onread` (buffer/callback, pausing when the
 * callback returns false, reading again on resume()), 'end' for the peer's end of data, 'drain',
 * 'error', 'close', end() and resetAndDestroy().
 */
export interface EndpointConnector {
  /** For logs and status: `port-forward`. */
  readonly kind: string;
  /**
   * One timeout per attempt, when this way of connecting needs other ones than a TCP connect's
   * (the Dialer's defaults otherwise).
   */
  readonly dialTimeoutsMs?: readonly number[];
  /**
   * Whether the endpoint can be reached this way at all (an endpoint that cannot is left out of the
   * balancer; the connector says why once per endpoint).
   */
  usable(endpoint: Endpoint, service: string): boolean;
  /** One attempt, given up after timeoutMs; done is called once, asynchronously, unless cancelled. */
  connect(endpoint: Endpoint, timeoutMs: number, onread: net.OnReadOpts | undefined, done: (result: ConnectResult) => void): PendingConnect;
  /** Ends every stream and request it has open. Idempotent. */
  close(): void;
}
