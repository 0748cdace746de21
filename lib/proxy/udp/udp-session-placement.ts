import type { Endpoint } from '../../model/endpoint.js';

/** What another process needs to hold one UDP session of a service port. */
export interface RemoteSessionRequest {
  /** The session's key in the listening socket's table (listen index, client address and port). */
  readonly key: string;
  readonly listenIndex: number;
  /** The listening socket's bound address: the session's reply socket binds it too. */
  readonly local: { readonly address: string; readonly port: number; readonly family: 'udp4' | 'udp6' };
  readonly client: { readonly address: string; readonly port: number };
  readonly endpoint: Endpoint;
}

/**
 * Lets a UDP proxy socket hold some of its sessions in other processes (WorkerPool's workers): the
 * listening socket still sees every new client and picks its endpoint (so balancing and affinity
 * are decided in one place), then hands the session over. The other process opens the session's
 * sockets, including one connected to the client on the service's address, after which the kernel
 * delivers that client's datagrams to it directly.
 */
export interface UdpSessionPlacement {
  /** Where the next new session goes: undefined for this process, else a host number. */
  place(): number | undefined;
  /** Opens a session in `host`; its first datagram goes along. */
  open(host: number, request: RemoteSessionRequest, first: Buffer): void;
  /** A datagram of a session held by `host` that reached the listening socket meanwhile. */
  forward(host: number, key: string, msg: Buffer): void;
}
