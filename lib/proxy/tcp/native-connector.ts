import type { DialOwner, TcpRelayGroup } from '../../internals/tcp-native.js';
import type { Endpoint } from '../../model/endpoint.js';
import type { ConnectResult, PendingConnect } from '../endpoint-connector.js';
import type { UpstreamConnector } from './dialer.js';

/**
 * The Dialer's attempts made by the native TCP addon, for ports it relays: the upstream socket is
 * the addon's from its connect to its close, so a connection costs no libuv handle for it, no call
 * into JavaScript for its connect beyond the one per wakeup the addon makes, and none of libuv's
 * epoll_ctl and getsockopt calls around the connect and the close.
 */
export function nativeConnector(relays: TcpRelayGroup<object>): UpstreamConnector<NativeDial> {
  return {
    connect(endpoint: Endpoint, timeoutMs: number, _onread: unknown, done: (result: ConnectResult<NativeDial>) => void): PendingConnect {
      return new NativeDial(relays, endpoint, timeoutMs, done);
    },
  };
}

/**
 * One attempt, and once connected the upstream itself: JavaScript holds the addon's id for it (a
 * relay of the port's group, attached to the client by NativeForwarder), never its descriptor.
 */
export class NativeDial implements PendingConnect, DialOwner {
  readonly relays: TcpRelayGroup<object>;
  readonly #done: (result: ConnectResult<NativeDial>) => void;
  /** The addon's id for this socket; -1 when its connect could not start. */
  readonly id: number = -1;
  #timer: NodeJS.Timeout | undefined;
  /** No result is to be delivered any more (one was, or the attempt was cancelled). */
  #over = false;

  constructor(relays: TcpRelayGroup<object>, endpoint: Endpoint, timeoutMs: number, done: (result: ConnectResult<NativeDial>) => void) {
    this.relays = relays;
    this.#done = done;
    try {
      this.id = relays.dial(endpoint.ip, endpoint.port, this);
    } catch (err) {
      // Out of descriptors, a refusal at once and the like: reported asynchronously, as every
      // outcome, by the errno's name (the Dialer tells local errors from the endpoint's).
      this.#over = true;
      process.nextTick(done, { kind: 'failed', reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
      return;
    }
    this.#timer = setTimeout(this.#onTimeout, timeoutMs);
  }

  cancel(): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#timer);
    this.relays.stop(this.id);
  }

  /** A connected upstream that is not to be relayed (its client went away): the addon closes it. */
  close(): void {
    this.relays.stop(this.id);
  }

  /** The addon's word on the connect: '' connected, else the errno's name (ECONNREFUSED...). */
  dialed(code: string): void {
    if (this.#over) {
      // Cancelled while the addon held the result for its report: nobody takes the socket.
      if (code === '') this.relays.stop(this.id);
      return;
    }
    this.#over = true;
    clearTimeout(this.#timer);
    this.#done(code === '' ? { kind: 'connected', socket: this } : { kind: 'failed', reason: code });
  }

  readonly #onTimeout = (): void => {
    // As on the other paths (see Dial.#onTimeout): the connect may have completed in this very
    // turn's I/O phase after a long pause of the loop; give it that turn before calling it dead.
    setImmediate(() => {
      if (this.#over) return;
      this.#over = true;
      this.relays.stop(this.id);
      this.#done({ kind: 'failed', reason: 'ETIMEDOUT' });
    });
  };
}
