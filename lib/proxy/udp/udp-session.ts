import type dgram from 'node:dgram';
import type { DatagramSender } from '../../internals/udp-handles.js';
import type { Endpoint } from '../../model/endpoint.js';
import type { EndpointStats } from '../proxy-stats.js';
import type { TableEntry } from './udp-session-table.js';

/** One client (address and port, on one listening socket) and its upstream socket. */
export class UdpSession {
  lastActiveMs = 0;
  olderEntry: TableEntry | undefined = undefined;
  newerEntry: TableEntry | undefined = undefined;
  /** Datagrams waiting for connect(); undefined once connected. */
  pending: Buffer[] | undefined = [];
  closed = false;
  /**
   * A socket on the listening socket's address and port, connect()ed to the client, once it is
   * ready: the kernel then delivers this client's datagrams to it rather than to the listening
   * socket (a connected socket is the closer match), and replies go out through it without an
   * address per send. Undefined until then, or if it could not be opened.
   */
  reply: dgram.Socket | undefined;
  /** Sends on the reply socket; set with it. */
  toClient: DatagramSender | undefined;
  /** Sends on the upstream socket, once it is connected. */
  toEndpoint: DatagramSender | undefined;
  /** The session's id on the native data path, which then holds both its sockets. */
  nativeId: number | undefined = undefined;

  constructor(
    readonly key: string,
    readonly listenSocket: dgram.Socket,
    readonly listenIndex: number,
    readonly clientAddress: string,
    readonly clientPort: number,
    readonly endpoint: Endpoint,
    readonly endpointStats: EndpointStats,
    /** Connected to the endpoint; undefined on the native data path. */
    readonly upstream: dgram.Socket | undefined,
  ) {}
}
