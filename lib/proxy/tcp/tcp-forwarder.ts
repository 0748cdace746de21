import type net from 'node:net';
import type { EndpointStats, ProxyStats } from '../proxy-stats.js';

/**
 * Copies bytes both ways between a client connection and its upstream (endpoint) connection until
 * both are closed.
 *
 * - Backpressure: a source is paused when its destination's write() returns false and resumed on
 *   'drain', so a slow reader holds at most about one highWaterMark plus one read in this process.
 *   No pipe(): its per-chunk bookkeeping and unpipe-on-end semantics buy nothing here.
 * - Half-close: 'end' (a FIN) from one side ends the other side's writable after its pending
 *   writes; the opposite direction keeps flowing. Both sockets need allowHalfOpen. (The legacy
 *   proxier closed both connections when either direction ended, losing replies sent after EOF.)
 * - Reset: an error on one side resets the other (RST), so a peer that was reset is not told
 *   that the stream ended cleanly.
 * - Both sockets are destroyed by Node once both their directions are done; stats.active (and the
 *   endpoint's active count) drop and onClosed runs exactly once, after the second 'close'. Listeners live on these two sockets only,
 *   so nothing outlives them.
 *
 * Per connection this allocates one object and ten small closures, and nothing per chunk.
 */
export class TcpForwarder {
  readonly client: net.Socket;
  readonly upstream: net.Socket;

  constructor(client: net.Socket, upstream: net.Socket, stats: ProxyStats, endpointStats: EndpointStats, onClosed: (forwarder: TcpForwarder) => void) {
    this.client = client;
    this.upstream = upstream;
    stats.active++;
    endpointStats.active++;
    let open = 2;
    const onClose = (): void => {
      if (--open === 0) {
        stats.active--;
        endpointStats.active--;
        onClosed(this);
      }
    };

    client.on('data', (chunk: Buffer) => {
      stats.bytesIn += chunk.length;
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('data', (chunk: Buffer) => {
      stats.bytesOut += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    upstream.on('drain', () => client.resume());
    client.on('drain', () => upstream.resume());
    client.on('end', () => {
      if (!upstream.destroyed) upstream.end();
    });
    upstream.on('end', () => {
      if (!client.destroyed) client.end();
    });
    client.on('error', () => reset(upstream));
    upstream.on('error', () => reset(client));
    client.once('close', onClose);
    upstream.once('close', onClose);
    // Accepted with pauseOnConnect, the client has not read a byte yet (so nothing was lost while
    // dialing); readableFlowing is false, so adding 'data' did not start it.
    client.resume();
  }

  /** Aborts the connection: both peers get a RST. */
  destroy(): void {
    reset(this.client);
    reset(this.upstream);
  }
}

/** Sends a RST: close with SO_LINGER 0. */
export function reset(s: net.Socket): void {
  // resetAndDestroy() without a handle would emit an error instead; a destroyed socket has none.
  if (s.destroyed) return;
  // Once our FIN is queued (end() was called) libuv refuses to reset (uv_tcp_close_reset gives
  // EINVAL after a shutdown) and Node then drops the handle without closing it: a leaked
  // descriptor that keeps the process alive. A plain close is all that is left to do then.
  if (s.writableEnded || s.connecting) s.destroy();
  else s.resetAndDestroy();
}
