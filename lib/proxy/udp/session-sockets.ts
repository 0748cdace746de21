import dgram from 'node:dgram';
import { connectedSender, receiveDirect } from '../../internals/udp-handles.js';
import type { DatagramSender } from '../../internals/udp-handles.js';
import { isLocalResourceError } from '../descriptor-budget.js';
import type { EndpointStats, ProxyStats } from '../proxy-stats.js';

/**
 * Datagrams a session queues while its sockets are still connecting (a few ticks): enough for a
 * burst of DNS retries, small enough that a flood cannot grow memory.
 */
const MAX_PENDING = 64;

/** What sendOrQueue needs of a UDP session. */
export interface SendingSession {
  /** Datagrams waiting for the session's sockets to connect; undefined once they are. */
  pending: Buffer[] | undefined;
  /** Sends on the upstream socket; set when it is connected, before pending is undefined. */
  toEndpoint: DatagramSender | undefined;
}

/** Sends a client's datagram to the endpoint, or queues it until the session is connected; false when dropped. */
export function sendOrQueue(session: SendingSession, msg: Buffer): boolean {
  const pending = session.pending;
  if (pending === undefined) (session.toEndpoint as DatagramSender)(msg);
  else if (pending.length < MAX_PENDING) pending.push(msg);
  else return false;
  return true;
}

/** What endSession needs of a UDP session. */
export interface EndingSession extends SendingSession {
  closed: boolean;
  readonly endpointStats: EndpointStats;
  /** The socket connected to the endpoint (none on the native data path, whose owner closes its sockets). */
  readonly upstream: dgram.Socket | undefined;
  /** The socket connected to the client, if the session has one. */
  readonly reply?: dgram.Socket | undefined;
}

/** Closes a session's sockets and takes it off the active counts; false if it was closed already. */
export function endSession(stats: ProxyStats, session: EndingSession): boolean {
  if (session.closed) return false;
  session.closed = true;
  session.pending = undefined;
  stats.active--;
  session.endpointStats.active--;
  if (session.upstream !== undefined) closeQuietly(session.upstream);
  if (session.reply !== undefined) closeQuietly(session.reply);
  return true;
}

/** Closes a dgram socket that may already be closed (dgram throws on a second close). */
export function closeQuietly(socket: dgram.Socket, done?: () => void): void {
  try {
    socket.close(done);
  } catch {
    done?.();
  }
}

/** What openReplySocket needs of a UDP session. */
export interface ReplyingSession {
  readonly closed: boolean;
  readonly listenSocket: dgram.Socket;
  readonly clientAddress: string;
  readonly clientPort: number;
  reply: dgram.Socket | undefined;
  toClient: DatagramSender | undefined;
}

/** Where the datagrams a reply socket receives go, and what its owner counts. */
export interface ReplySocketHandlers {
  /** A datagram of the session's client. */
  fromClient(msg: Buffer): void;
  /** Another client's datagram, queued before connect(): it belongs to the listening socket. */
  fromOther(msg: Buffer, address: string, port: number): void;
  localResourceError(code: string): void;
}

/**
 * Opens the session's reply socket: bound to the listening socket's address and port, connect()ed
 * to the client. Once connected it is session.reply, with session.toClient sending on it.
 */
export function openReplySocket(session: ReplyingSession, handlers: ReplySocketHandlers): void {
  let local: ReturnType<dgram.Socket['address']>;
  try {
    local = session.listenSocket.address();
  } catch {
    return;
  }
  const socket = dgram.createSocket({ type: local.family === 'IPv6' ? 'udp6' : 'udp4', reuseAddr: true });
  // Until connect() completes, the kernel may deliver any client's datagram to this socket (it
  // is bound to the listening socket's address and port, and is newer): those take the
  // listening socket's path, so none is lost.
  const onDatagram = (msg: Buffer, rinfo: { address: string; port: number }): void => {
    if (session.reply === socket && rinfo.port === session.clientPort && rinfo.address === session.clientAddress) handlers.fromClient(msg);
    else handlers.fromOther(msg, rinfo.address, rinfo.port);
  };
  socket.on('message', onDatagram);
  // Any failure (out of descriptors, say) leaves the session on the listening socket.
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (isLocalResourceError(err.code)) handlers.localResourceError(err.code as string);
    if (session.reply === socket) {
      session.reply = undefined;
      session.toClient = undefined;
    }
    closeQuietly(socket);
  });
  socket.bind({ address: local.address, port: local.port }, () => {
    if (session.closed) {
      closeQuietly(socket);
      return;
    }
    socket.connect(session.clientPort, session.clientAddress, (err?: Error) => {
      if ((err !== undefined && err !== null) || session.closed) {
        closeQuietly(socket);
        return;
      }
      session.reply = socket;
      session.toClient = connectedSender(socket);
      // Other clients' datagrams queued before connect() may still be read: onDatagram sorts.
      receiveDirect(socket, onDatagram);
    });
  });
}
