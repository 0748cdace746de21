import { closeNativeClient, nativeSocketAddress } from '../../internals/tcp-native-listener.js';
import type { Address } from '../../internals/tcp-handles.js';

/**
 * A client a native listener accepted (lib/internals/tcp-native-listener.ts): its descriptor, and
 * its address when the listener was asked for it. JavaScript owns the descriptor until a relay
 * takes it (NativeForwarder, which then closes it); a client turned away before is closed here.
 */
export class NativeClient {
  readonly fd: number;
  #peer: Address | undefined;
  #closed = false;

  constructor(fd: number, peer?: Address) {
    this.fd = fd;
    this.#peer = peer;
  }

  /** The client at index i of a native listener's batch: fd, or fd, ip, port with peers (see AcceptOwner). */
  static accepted(batch: unknown[], i: number, peers: boolean): NativeClient {
    const ip = peers ? batch[i + 1] : undefined;
    return new NativeClient(batch[i] as number, typeof ip === 'string' ? { address: ip, port: batch[i + 2] as number } : undefined);
  }

  /** The client's address: from the accept when it came with it, else asked of the kernel (once). */
  peer(): Address | undefined {
    if (this.#peer === undefined && !this.#closed) this.#peer = nativeSocketAddress(this.fd, true);
    return this.#peer;
  }

  /** The address the client connected to (getsockname); undefined once closed. */
  local(): Address | undefined {
    return this.#closed ? undefined : nativeSocketAddress(this.fd, false);
  }

  /** Closes the client with a RST. Once only: the descriptor's number may be another's after. */
  reset(): void {
    this.#close(true);
  }

  close(): void {
    this.#close(false);
  }

  /** A relay took the descriptor: it closes it, never this. */
  handedOver(): void {
    this.#closed = true;
  }

  #close(reset: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    closeNativeClient(this.fd, reset);
  }
}
