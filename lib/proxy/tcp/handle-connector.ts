import { TCP_HANDLES } from '../../internals/tcp-handles.js';
import type { TcpHandle, TcpHandles } from '../../internals/tcp-handles.js';
import type { Endpoint } from '../../model/endpoint.js';
import type { ConnectResult, PendingConnect } from '../endpoint-connector.js';
import type { UpstreamConnector } from './dialer.js';

// Only used where the handles are usable (TcpProxySocket checks TCP_HANDLES first).
const H = TCP_HANDLES as TcpHandles;

/** The Dialer's attempts as libuv handles connecting to the endpoint's IP (the fast path's upstreams). */
export const HANDLE_CONNECTOR: UpstreamConnector<TcpHandle> = {
  connect(endpoint: Endpoint, timeoutMs: number, _onread: unknown, done: (result: ConnectResult<TcpHandle>) => void): PendingConnect {
    return new HandleConnect(endpoint, timeoutMs, done);
  },
};

/** One attempt: a connecting handle and its timeout. */
class HandleConnect implements PendingConnect {
  readonly #done: (result: ConnectResult<TcpHandle>) => void;
  #handle: TcpHandle | undefined;
  #timer: NodeJS.Timeout | undefined;
  #over = false;

  constructor(endpoint: Endpoint, timeoutMs: number, done: (result: ConnectResult<TcpHandle>) => void) {
    this.#done = done;
    // An IP literal: no resolver involved.
    const h = H.connect(endpoint.ip, endpoint.port, this.#onConnect);
    if (typeof h === 'number') {
      // Out of descriptors and the like: reported asynchronously, as every outcome.
      this.#over = true;
      process.nextTick(done, { kind: 'failed', reason: H.errorName(h) });
      return;
    }
    this.#handle = h;
    this.#timer = setTimeout(this.#onTimeout, timeoutMs);
  }

  cancel(): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    // libuv then completes the connect with ECANCELED, which #over ignores.
    this.#handle?.close();
  }

  readonly #onConnect = (status: number, handle: TcpHandle): void => {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    if (status === 0) {
      this.#done({ kind: 'connected', socket: handle });
      return;
    }
    handle.close();
    this.#done({ kind: 'failed', reason: H.errorName(status) });
  };

  readonly #onTimeout = (): void => {
    // As on the net path (see Dial.#onTimeout): the connect may have completed in this very turn's
    // I/O phase after a long pause of the loop; give it that turn before calling the endpoint dead.
    setImmediate(() => {
      if (this.#over) return;
      this.#over = true;
      this.#handle?.close();
      this.#done({ kind: 'failed', reason: 'ETIMEDOUT' });
    });
  };
}
