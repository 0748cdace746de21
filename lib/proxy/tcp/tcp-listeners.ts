import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { TCP_HANDLES } from '../../internals/tcp-handles.js';
import type { TcpHandle, TcpHandles } from '../../internals/tcp-handles.js';
import { NativeListener } from '../../internals/tcp-native-listener.js';
import type { AcceptOwner } from '../../internals/tcp-native-listener.js';
import { listenError } from '../../net/listen-error.js';
import { whenBound } from '../../net/when-bound.js';
import type { ListenAddress } from '../proxy-socket.js';

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
  return listeners;
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
