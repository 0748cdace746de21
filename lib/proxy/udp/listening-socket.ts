import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import type { ListenAddress } from '../proxy-socket.js';
import { whenBound } from '../../net/when-bound.js';

/**
 * Socket buffers of a listening socket, which every client of the service shares: room for a burst
 * (the kernel caps it at net.core.rmem_max / wmem_max without complaint). Session sockets carry
 * one client each and keep the defaults.
 */
const LISTEN_BUFFER_BYTES = 4 << 20;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The listening sockets' address lookup. dgram looks up the destination of every unconnected
 * send(), and dns.lookup answers even an IP literal only on the next tick; the replies to clients
 * all go to IP literals, so answering those synchronously saves a lookup and a tick per datagram.
 */
function lookupLiteral(hostname: string, options: number, callback: LookupCallback): void {
  const family = net.isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options, callback);
}

export function socketType(host: string): 'udp4' | 'udp6' {
  return host.includes(':') ? 'udp6' : 'udp4';
}

/** A service's listening UDP socket for one address, not yet bound. */
export function createListeningSocket(address: ListenAddress): dgram.Socket {
  return dgram.createSocket({
    type: socketType(address.host),
    ipv6Only: address.ipv6Only === true,
    // Sessions' reply sockets bind the same address and port (see UdpSession.reply).
    reuseAddr: true,
    recvBufferSize: LISTEN_BUFFER_BYTES,
    sendBufferSize: LISTEN_BUFFER_BYTES,
    lookup: lookupLiteral as unknown as dgram.SocketOptions['lookup'],
  });
}

export function bindListeningSocket(socket: dgram.Socket, address: ListenAddress): Promise<void> {
  return whenBound(socket, (bound) => socket.bind({ address: address.host, port: address.port, exclusive: true }, bound));
}
