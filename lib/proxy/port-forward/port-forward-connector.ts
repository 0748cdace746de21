import type net from 'node:net';
import { Readable } from 'node:stream';
import { PortForward } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { logger } from '../../log.js';
import type { Logger } from '../../log.js';
import type { Endpoint } from '../../model/endpoint.js';
import type { ConnectResult, EndpointConnector, PendingConnect } from '../endpoint-connector.js';
import { UPSTREAM_WRITE_HIGH_WATER_MARK } from '../tcp/tcp-forwarder.js';
import { PortForwardStream } from './port-forward-stream.js';

export interface PortForwardConnectorOptions {
  /** Where the API server is and who we are (the kubeconfig the service source uses). */
  readonly kubeConfig: KubeConfig;
  /** One timeout per attempt; default PORT_FORWARD_DIAL_TIMEOUTS_MS. */
  readonly dialTimeoutsMs?: readonly number[];
  readonly log?: Logger;
}

/**
 * Attempt timeouts: an attempt is a TLS handshake, authentication and a WebSocket upgrade through
 * the API server to the kubelet, several round trips to a server that may be far away; the TCP
 * connect timeouts of direct dials (from 250 ms) would fail healthy pods. Four attempts, 15 s in all.
 */
export const PORT_FORWARD_DIAL_TIMEOUTS_MS: readonly number[] = Object.freeze([1000, 2000, 4000, 8000]);

/** Endpoints warned about for having no Pod, at most this many remembered (then warned again). */
const MAX_WARNED = 10_000;

function ignore(): void {}

/**
 * Reaches endpoints through the API server's `pods/portforward` subresource, with
 * @kubernetes/client-node's PortForward: one WebSocket (one forwarded stream) per client
 * connection, to the Pod the endpoint's targetRef names, at the endpoint's port.
 *
 * An attempt succeeds once the WebSocket is open. It fails, and the Dialer fails over to the next
 * endpoint, when the API server refuses the upgrade (404: the pod is gone; 403: no
 * `pods/portforward` permission; any other error status), or nothing answers within
 * the attempt's timeout. The kubelet connects to the pod's port only after the upgrade and
 * reports a refusal on the error channel: that arrives once the stream is handed over, and
 * resets that one client connection (counted by the forwarder, not retried elsewhere).
 */
export class PortForwardConnector implements EndpointConnector {
  readonly kind = 'port-forward';
  readonly dialTimeoutsMs: readonly number[];
  readonly #portForward: PortForward;
  readonly #log: Logger;
  /** Open and opening streams, for close(). */
  readonly #streams = new Set<PortForwardStream>();
  /** `service endpoint` keys already warned about (no Pod to forward to). */
  readonly #warned = new Set<string>();
  #closed = false;

  constructor(options: PortForwardConnectorOptions) {
    // disconnectOnErr: a message on a channel the protocol does not define closes the stream.
    this.#portForward = new PortForward(options.kubeConfig, true);
    // Validated by the Dialer, which reports a bad list as InvalidConfigError.
    this.dialTimeoutsMs = options.dialTimeoutsMs ?? PORT_FORWARD_DIAL_TIMEOUTS_MS;
    this.#log = options.log ?? logger('port-forward');
  }

  usable(endpoint: Endpoint, service: string): boolean {
    if (endpoint.pod !== undefined) return true;
    const key = `${service} ${endpoint.key}`;
    if (!this.#warned.has(key)) {
      if (this.#warned.size >= MAX_WARNED) this.#warned.clear();
      this.#warned.add(key);
      this.#log.warn('skipped endpoint: no Pod targetRef to port-forward to', { service, endpoint: endpoint.key });
    }
    return false;
  }

  connect(endpoint: Endpoint, timeoutMs: number, onread: net.OnReadOpts | undefined, done: (result: ConnectResult) => void): PendingConnect {
    const pod = endpoint.pod;
    const target = `${pod?.namespace ?? ''}/${pod?.name ?? ''}:${endpoint.port}`;
    let over = false;
    const finish = (result: ConnectResult): void => {
      if (over) return;
      over = true;
      clearTimeout(timer);
      done(result);
    };
    const stream = new PortForwardStream(target, onread, UPSTREAM_WRITE_HIGH_WATER_MARK);
    // An error must not crash the process before the forwarder takes the stream over; after, the
    // forwarder resets the client, and this says why (the error channel's text, for one).
    stream.on('error', (err: Error) => {
      if (this.#log.isDebugEnabled()) this.#log.debug('port-forward stream failed', { endpoint: endpoint.key, pod: target, error: err.message });
    });
    this.#streams.add(stream);
    stream.once('close', () => this.#streams.delete(stream));
    const abandon = (): void => {
      over = true;
      clearTimeout(timer);
      stream.destroy();
    };
    const timer = setTimeout(() => {
      stream.destroy();
      finish({ kind: 'failed', reason: 'ETIMEDOUT' });
    }, timeoutMs);
    if (pod === undefined || this.#closed) {
      process.nextTick(() => finish({ kind: 'failed', reason: pod === undefined ? 'no Pod targetRef' : 'closed' }));
      stream.destroy();
      return { cancel: abandon };
    }
    // The input stream stays idle: client-node's input path sends without waiting for the
    // socket, so it cannot push back on a fast client. The stream sends channel-0 messages on the
    // WebSocket itself, framed as client-node frames its input, each write completing when sent.
    const input = new Readable({ read: ignore });
    this.#portForward.portForward(pod.namespace, pod.name, [endpoint.port], stream.output, stream.errors, input).then(
      (result) => {
        const ws = result as unknown as WebSocket;
        if (over || stream.destroyed) {
          ws.on('error', ignore);
          ws.close();
          return;
        }
        stream.attach(ws);
        // The shape the forwarder expects of an upstream (see EndpointConnector).
        finish({ kind: 'connected', socket: stream as unknown as net.Socket });
      },
      (err: unknown) => {
        stream.destroy();
        finish({ kind: 'failed', reason: failureReason(err) });
      },
    );
    return { cancel: abandon };
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#streams) s.destroy();
    this.#streams.clear();
  }
}

/** ws says `Unexpected server response: 404` for a refused upgrade: `HTTP 404`; else the error code. */
function failureReason(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown } | undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const status = /Unexpected server response: (\d+)/.exec(message);
  if (status) return `HTTP ${status[1]}`;
  return typeof e?.code === 'string' ? e.code : message;
}
