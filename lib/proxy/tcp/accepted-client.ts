import net from 'node:net';
import { TCP_HANDLES } from '../../internals/tcp-handles.js';
import type { Address, TcpHandle } from '../../internals/tcp-handles.js';
import { clientIP } from '../client-ip.js';
import { NativeClient } from './native-client.js';

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
