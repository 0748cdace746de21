import { listenException } from './tcp-handles.js';
import type { Address } from './tcp-handles.js';
import { nativeBinding } from './tcp-native.js';
import type { TcpNativeBinding } from './tcp-native.js';

/** What a native listener's batches of accepted clients are given to. */
export interface AcceptOwner {
  /**
   * Clients accepted in one wakeup of the loop, as descriptors: [fd, fd...], or [fd, ip, port...]
   * while the listener is asked for their addresses (wantPeers). error: '' or the errno's name of
   * an accept that failed after them (EMFILE: the clients waiting then were closed, see
   * native/tcp_accept.c).
   */
  accepted(accepted: unknown[], error: string): void;
}

let accepting: TcpNativeBinding | undefined;

function onAccepted(owner: object, accepted: unknown[], error: string): void {
  (owner as AcceptOwner).accepted(accepted, error);
}

/**
 * A listening socket of the native TCP addon (native/tcp_accept.c): bound and listening in C, its
 * descriptor polled with the relays', its clients accepted in batches with one call into
 * JavaScript per batch. It costs no libuv handle and no TCPWrap (neither for itself nor for the
 * clients: they are bare descriptors until a relay takes them, see NativeClient).
 */
export class NativeListener {
  readonly #binding: TcpNativeBinding;
  readonly #id: number;
  #closed = false;

  /**
   * Binds ip:port (an IP literal; port 0: the kernel chooses) and listens. Undefined where this
   * process has no native TCP addon; the error net.Server would emit (code, errno, syscall
   * 'listen', address, port) when the bind or listen fails, nothing left open.
   */
  static listen(ip: string, port: number, options: { ipv6Only: boolean; reusePort: boolean; backlog: number; wantsPeers: boolean }, owner: AcceptOwner): NativeListener | Error | undefined {
    const b = nativeBinding();
    if (b === null) return undefined;
    if (accepting !== b) {
      b.acceptWith(onAccepted);
      accepting = b;
    }
    const id = b.listen(ip, port, (options.ipv6Only ? 1 : 0) | (options.reusePort ? 2 : 0), options.backlog, owner, options.wantsPeers);
    return id < 0 ? listenException(id, ip, port) : new NativeListener(b, id);
  }

  private constructor(b: TcpNativeBinding, id: number) {
    this.#binding = b;
    this.#id = id;
  }

  /** The address bound (the kernel's port for port 0); undefined once closed. */
  address(): Address | undefined {
    const a = this.#closed ? undefined : this.#binding.listenerAddress(this.#id);
    return a === undefined ? undefined : { address: a[0], port: a[1] };
  }

  /** Whether the next batches carry each client's address (see AcceptOwner). */
  wantPeers(yes: boolean): void {
    if (!this.#closed) this.#binding.wantPeers(this.#id, yes);
  }

  /** Closes the listening socket (the port is free when this returns); accepted clients are not touched. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#binding.unlisten(this.#id);
  }
}

/** Closes a client descriptor a native listener accepted (a RST when reset). */
export function closeNativeClient(fd: number, reset: boolean): void {
  nativeBinding()?.closeClient(fd, reset);
}

/** The peer's (getpeername) or the local (getsockname) address of a descriptor; undefined once it is gone. */
export function nativeSocketAddress(fd: number, peer: boolean): Address | undefined {
  const a = nativeBinding()?.address(fd, peer);
  return a === undefined ? undefined : { address: a[0], port: a[1] };
}
