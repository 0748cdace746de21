import type dgram from 'node:dgram';
import type { DatagramSender } from '../../internals/udp-handles.js';
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
