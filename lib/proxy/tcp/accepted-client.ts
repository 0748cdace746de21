import net from 'node:net';
import { TCP_HANDLES } from '../../internals/tcp-handles.js';
import type { Address, TcpHandle } from '../../internals/tcp-handles.js';
import type { ProxyProtocolVersion } from '../../model/proxy-protocol-annotation.js';
import { clientIP } from '../client-ip.js';
import type { Portal } from './connection-policy.js';
import { resetHandle } from './handle-forwarder.js';
import { NativeClient } from './native-client.js';
import { proxyProtocolHeader } from './proxy-protocol-header.js';
import { reset } from './tcp-forwarder.js';

/** An accepted client connection: a net.Socket, a libuv handle, or a descriptor the native addon accepted. */
export type AcceptedClient = net.Socket | TcpHandle | NativeClient;

/** The client's address and port, asked of the kernel (getpeername); undefined once it is gone. */
export function clientPeer(client: AcceptedClient): Address | undefined {
  if (client instanceof NativeClient) return client.peer();
  if (!(client instanceof net.Socket)) return TCP_HANDLES?.peer(client);
  const { remoteAddress, remotePort } = client;
  return remoteAddress === undefined || remotePort === undefined ? undefined : { address: remoteAddress, port: remotePort };
}

/** The address and port the client connected to (getsockname); undefined once it is gone. */
export function clientLocal(client: AcceptedClient): Address | undefined {
  if (client instanceof NativeClient) return client.local();
  if (!(client instanceof net.Socket)) return TCP_HANDLES?.local(client);
  const { localAddress, localPort } = client;
  return localAddress === undefined || localPort === undefined ? undefined : { address: localAddress, port: localPort };
}

/** The client's address as the balancer sees it (see clientIP), '' once it is gone. */
export function clientIPOf(client: AcceptedClient): string {
  return clientIP(clientPeer(client)?.address);
}

/** Closes the client with a RST, whatever it is. */
export function resetClient(client: AcceptedClient): void {
  if (client instanceof net.Socket) reset(client);
  else if (client instanceof NativeClient) client.reset();
  else resetHandle(client);
}

/**
 * The client's PROXY protocol header (see proxyProtocolHeader); undefined when the client is gone.
 * Throws for an address the encoder cannot take.
 */
export function clientProxyHeader(client: AcceptedClient, version: ProxyProtocolVersion, portals: readonly Portal[] | undefined): Buffer | undefined {
  const remote = clientPeer(client);
  const local = clientLocal(client);
  if (remote === undefined || local === undefined) return undefined;
  return proxyProtocolHeader(version, { host: remote.address, port: remote.port }, portals, { host: local.address, port: local.port });
}

/** The error of an accept that failed with code, as net.Server would emit it. */
export function acceptException(code: string | undefined): NodeJS.ErrnoException {
  return Object.assign(new Error(`accept ${code}`), { code, syscall: 'accept' });
}
