import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { listeningHandle, TCP_HANDLES } from '../../internals/tcp-handles.js';
import type { TcpHandle, TcpHandles } from '../../internals/tcp-handles.js';
import { NativeListener } from '../../internals/tcp-native-listener.js';
import type { AcceptOwner } from '../../internals/tcp-native-listener.js';
import { listenError } from '../../net/listen-error.js';
import { whenBound } from '../../net/when-bound.js';
import type { ListenAddress } from '../proxy-socket.js';
import { STREAM_HIGH_WATER_MARK } from './tcp-forwarder.js';

/** Accept queue length: bursts of new connections wait in the kernel instead of being dropped. */
const BACKLOG = 4096;

/** Listens with a net.Server on one address. */
export function listen(server: net.Server, address: ListenAddress, reusePort: boolean): Promise<void> {
  const options = { host: address.host, port: address.port, backlog: BACKLOG, ipv6Only: address.ipv6Only === true, ...(reusePort ? { reusePort } : {}) };
  return whenBound(server, (bound) => server.listen(options, bound));
}

/** Listens with a net.Server on a listening handle another process bound. */
export function adopt(server: net.Server, handle: object): Promise<void> {
  return whenBound(server, (bound) => server.listen(handle, BACKLOG, bound));
}

/**
 * Binds and listens on a libuv handle per address (IP literals only), all or none: on a failure
 * the handles already listening are closed and the error is the one net.Server would give.
 */
export function listenOnHandles(
  listenOn: NonNullable<TcpHandles['listen']>,
  addresses: readonly ListenAddress[],
  onHandle: (error: string | undefined, client: TcpHandle | undefined) => void,
): TcpHandle[] {
  const listeners: TcpHandle[] = [];
  for (const { host, port, ipv6Only } of addresses) {
    const handle = listenOn(host, port, BACKLOG, ipv6Only === true, onHandle);
    if (handle instanceof Error) {
      for (const l of listeners) l.close();
      throw listenError(host, port, handle);
    }
    listeners.push(handle);
  }
  return listeners;
}

/**
 * Binds and listens with the native TCP addon on every address (IP literals only), all or none, as
 * listenOnHandles. Undefined (nothing opened) where this process has no addon.
 */
export function listenNatively(addresses: readonly ListenAddress[], reusePort: boolean, wantsPeers: boolean, owner: AcceptOwner): NativeListener[] | undefined {
  const listeners: NativeListener[] = [];
  for (const { host, port, ipv6Only } of addresses) {
    const listener = NativeListener.listen(host, port, { ipv6Only: ipv6Only === true, reusePort, backlog: BACKLOG, wantsPeers }, owner);
    if (!(listener instanceof NativeListener)) {
      for (const l of listeners) l.close();
      if (listener === undefined) return undefined;
      throw listenError(host, port, listener);
    }
    listeners.push(listener);
  }
  // Kept for the port's life: an array grown by push() keeps room for 17 (about 150 bytes per
  // port with 10,000 ports); most ports have one address.
  return listeners.length === 1 ? [listeners[0] as NativeListener] : listeners;
}

/** The addresses the kernel bound, of native listeners, handles and servers. */
export function boundAddresses(listeners: readonly TcpHandle[], servers: readonly net.Server[], natives: readonly NativeListener[] = []): ListenAddress[] {
  const out: ListenAddress[] = [];
  for (const listener of natives) {
    const addr = listener.address();
    if (addr !== undefined) out.push({ host: addr.address, port: addr.port });
  }
  for (const handle of listeners) {
    const addr = TCP_HANDLES?.local(handle);
    if (addr !== undefined) out.push({ host: addr.address, port: addr.port });
  }
  for (const server of servers) {
    const addr = server.address() as AddressInfo | null;
    if (addr !== null) out.push({ host: addr.address, port: addr.port });
  }
  return out;
}

/**
 * The listening sockets of one port, of whichever kind it opened: the native addon's, libuv
 * handles, or net.Servers (which TcpProxySocket opens itself, see servers).
 */
export class PortListeners {
  servers: net.Server[] = [];
  #handles: TcpHandle[] = [];
  #natives: NativeListener[] = [];
  /** Whether the native listeners are asked for each client's address (see TcpConnections.onAccepted). */
  #wantsPeers = false;

  /** Whether the native addon accepts the port's clients. */
  get native(): boolean {
    return this.#natives.length > 0;
  }

  get wantsPeers(): boolean {
    return this.#wantsPeers;
  }

  /**
   * Listens with a net.Server per address (or on handles another process bound), all or none: on
   * a failure the servers are closed and the error start() rejects with is returned.
   */
  async listenServers(addresses: readonly ListenAddress[], handles: readonly object[] | undefined, reusePort: boolean, onConnection: (client: net.Socket) => void): Promise<Error | undefined> {
    const options = { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: STREAM_HIGH_WATER_MARK } as net.ServerOpts;
    const servers = addresses.map(() => net.createServer(options, onConnection));
    this.servers = servers;
    const results = await Promise.allSettled(servers.map((server, i) => (handles === undefined ? listen(server, addresses[i] as ListenAddress, reusePort) : adopt(server, handles[i] as object))));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed < 0) return undefined;
    // All or none: a service that is reachable on some of its addresses only is harder to diagnose
    // than one that failed to open.
    this.closeServers();
    const { host, port } = addresses[failed] as ListenAddress;
    return listenError(host, port, (results[failed] as PromiseRejectedResult).reason);
  }

  /** Closes (and forgets) the servers opened so far. */
  closeServers(): void {
    for (const server of this.servers) if (server.listening) server.close();
    this.servers = [];
  }

  /** The servers' accept errors go to onAcceptError; their accepted connections to onHandle, as handles, when given. */
  takeAccepts(onAcceptError: (err: NodeJS.ErrnoException) => void, onHandle: ((error: string | undefined, client: TcpHandle | undefined) => void) | undefined): void {
    for (const server of this.servers) {
      server.on('error', onAcceptError);
      // A server whose handle cannot be taken over keeps accepting net.Sockets.
      if (onHandle !== undefined) TCP_HANDLES?.takeAccepts(server, onHandle);
    }
  }

  /** Listens on libuv handles (see listenOnHandles). */
  listenOnHandles(listenOn: NonNullable<TcpHandles['listen']>, addresses: readonly ListenAddress[], onHandle: (error: string | undefined, client: TcpHandle | undefined) => void): void {
    this.#handles = listenOnHandles(listenOn, addresses, onHandle);
  }

  /** Listens with the native addon (see listenNatively); false (nothing opened) where this process has none. */
  listenNatively(addresses: readonly ListenAddress[], reusePort: boolean, owner: AcceptOwner): boolean {
    const natives = listenNatively(addresses, reusePort, this.#wantsPeers, owner);
    if (natives !== undefined) this.#natives = natives;
    return natives !== undefined;
  }

  /** Whether the native listeners' next batches carry the clients' addresses. */
  wantPeers(yes: boolean): void {
    if (yes === this.#wantsPeers) return;
    this.#wantsPeers = yes;
    for (const l of this.#natives) l.wantPeers(yes);
  }

  addresses(): ListenAddress[] {
    return boundAddresses(this.#handles, this.servers, this.#natives);
  }

  /**
   * The native handles of the open listeners, for another process to accept on as well (sent with
   * child_process send()). Not the net.Server: the receiving side would wrap that in a server with
   * default options (no pauseOnConnect, no allowHalfOpen); the handle lets it make its own.
   * None for native listeners (see nativeAccept: false for a socket whose handles are shared).
   */
  listeningHandles(): object[] {
    if (this.#handles.length > 0) return [...this.#handles];
    return this.servers.map(listeningHandle).filter((h): h is object => h !== undefined);
  }

  /**
   * Closes every listener; the port is free when it returns (libuv closes a server's descriptor
   * inside server.close(), though its 'close' event waits for every connection). False when none
   * was open.
   */
  close(): boolean {
    const { servers } = this;
    for (const server of servers) if (server.listening) server.close();
    const handles = this.#handles;
    this.#handles = [];
    for (const handle of handles) handle.close();
    const natives = this.#natives;
    this.#natives = [];
    for (const l of natives) l.close();
    return servers.length > 0 || handles.length > 0 || natives.length > 0;
  }
}
