import dgram from 'node:dgram';
import net from 'node:net';
import { listenError } from '../net/listen-error.js';
import { whenBound } from '../net/when-bound.js';

/** A held node port: closing it gives the port back. Idempotent. */
export interface NodePortClaim {
  close(): void;
}

/**
 * Holds a NodePort open on every address, as the legacy proxier's claimNodePort did, so that no
 * other process can take a port that redirect rules send to the proxy. Nothing is served on it:
 * the rules deliver NodePort traffic to the proxy port; anything that still lands here (an
 * address outside --nodeport-addresses) is closed or dropped rather than left hanging. `::` is held
 * for IPv6 only (the IPv6 socket of a dual-stack service, beside the IPv4 one's `0.0.0.0`).
 */
export async function claimNodePort(protocol: 'TCP' | 'UDP', port: number, host = '0.0.0.0'): Promise<NodePortClaim> {
  if (protocol === 'TCP') {
    const server = net.createServer((s) => s.destroy());
    await whenBound(server, (bound) => server.listen({ host, port, backlog: 1, ipv6Only: host === '::' }, bound)).catch((err: unknown) => {
      throw listenError(host, port, err);
    });
    server.on('error', () => {});
    return { close: () => void (server.listening && server.close()) };
  }
  const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: host === '::' });
  await whenBound(socket, (bound) => socket.bind({ address: host, port, exclusive: true }, bound)).catch((err: unknown) => {
    throw listenError(host, port, err);
  });
  socket.on('error', () => {});
  socket.on('message', () => {});
  let open = true;
  return {
    close: () => {
      if (open) socket.close();
      open = false;
    },
  };
}
