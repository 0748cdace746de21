import type net from 'node:net';
import type { EndpointStats, ProxyStats } from '../proxy-stats.js';
import { adoptOnRead } from '../../internals/tcp-accepted-onread.js';
import { CLIENT_READ_BUFFER_INITIAL, ReadBuffer } from './read-buffer.js';

/**
 * highWaterMark of accepted client sockets (readable and writable: net.Server sets both). Node's
 * default (16 KiB) is below one 64 KiB read, so nearly every bulk chunk made write() return false
 * and cost a pause/drain/resume cycle. A paused client still reads up to this much more.
 */
export const STREAM_HIGH_WATER_MARK = 256 << 10;

/**
 * Writable highWaterMark of upstream sockets: client data is batched into writes this large (see
 * onClientData) before the client is paused. Their readable side has no buffer (onread).
 */
export const UPSTREAM_WRITE_HIGH_WATER_MARK = 1 << 20;

/** Node's read size for accepted sockets read with 'data' (64 KiB): a read this large suggests more is queued. */
const CORK_READ_BYTES = 64 << 10;

/** The forwarder of a socket (set on both sockets once forwarding starts). */
const kForwarder = Symbol('forwarder');
type ForwardedSocket = net.Socket & { [kForwarder]: TcpForwarder };

/**
 * Copies bytes both ways between a client connection and its upstream (endpoint) connection until
 * both are closed.
 *
 * - Both directions read straight into a buffer of this forwarder, which is reused for the next
 *   read whenever the write of the last one completed synchronously (ReadBuffer: 1 KiB for an
 *   idle connection, growing to 1 MiB for bulk). Upstream: net.connect's onread (the forwarder
 *   itself is the onread option, see buffer/callback). Client: the same installed on the accepted
 *   socket (adoptOnRead, see clientBuffer/clientCallback); where this Node does not allow that,
 *   'data' events with the corking of onClientData.
 * - Backpressure: a source is paused when its destination's write() returns false and resumed on
 *   'drain', so a slow reader holds at most about one highWaterMark plus one read in this process.
 *   No pipe(): its per-chunk bookkeeping and unpipe-on-end semantics buy nothing here.
 * - Half-close: 'end' (a FIN) from one side ends the other side's writable after its pending
 *   writes; the opposite direction keeps flowing. Both sockets need allowHalfOpen. (The legacy
 *   proxier closed both connections when either direction ended, losing replies sent after EOF.)
 * - Reset: an error on one side resets the other (RST), so a peer that was reset is not told
 *   that the stream ended cleanly.
 * - Both sockets are destroyed by Node once both their directions are done; stats.active (and the
 *   endpoint's active count) drop and onClosed runs exactly once, after the second 'close'.
 *   Listeners live on these two sockets only, so nothing outlives them.
 *
 * Lifecycle: constructed when the client is accepted (before dialing, since the upstream socket
 * needs its onread at connect time), start()ed once the upstream connected. The socket listeners
 * are shared module functions that find the forwarder on the socket, so per connection this
 * allocates this object, its two ReadBuffers and four onread closures, and per read only the
 * subarray written.
 */
export class TcpForwarder implements net.OnReadOpts {
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
  readonly stats: ProxyStats;
  endpointStats: EndpointStats | undefined;
  readonly onClosed: (forwarder: TcpForwarder) => void;
  /** Sockets not yet closed. */
  open = 2;
  /** The upstream is corked until the check phase of this event-loop turn (see onClientData). */
  corked = false;
  /**
   * Idle sweeps (see IdleSweep) since the last byte either way: every read zeroes it, a sweep
   * increments it. A number written per read, so idleness costs the data path nothing else.
   */
  idleTicks = 0;
  /** The idle timeout sent both peers a FIN; the next sweep closes what is still open. */
  idleClosing = false;
  /** When forwarding started (performance.now() ms), for the max connection age (see IdleSweep). */
  startedAt = 0;
  /** The connection's place in the age's jitter window, drawn by the sweep; negative until then. */
  ageJitter = -1;
  /** When the max connection age sent the endpoint a FIN (performance.now() ms); 0 = not yet. */
  agedAt = 0;
  readonly #toClient = new ReadBuffer();
  readonly #toUpstream = new ReadBuffer(CLIENT_READ_BUFFER_INITIAL);

  constructor(client: net.Socket, stats: ProxyStats, onClosed: (forwarder: TcpForwarder) => void) {
    this.client = client;
    this.stats = stats;
    this.onClosed = onClosed;
  }

  /** Starts forwarding between the client and its connected upstream socket. */
  start(upstream: net.Socket, endpointStats: EndpointStats): void {
    const client = this.client;
    this.upstream = upstream;
    this.endpointStats = endpointStats;
    this.startedAt = performance.now();
    this.stats.active++;
    endpointStats.active++;
    (client as ForwardedSocket)[kForwarder] = this;
    (upstream as ForwardedSocket)[kForwarder] = this;
    // Client reads into our buffers too where this Node allows it, else as 'data' chunks.
    if (!adoptOnRead(client, this.clientBuffer, this.clientCallback)) client.on('data', onClientData);
    upstream.on('drain', onUpstreamDrain);
    client.on('drain', onClientDrain);
    client.on('end', onEnd);
    upstream.on('end', onEnd);
    client.on('error', onError);
    upstream.on('error', onError);
    client.once('close', onClose);
    upstream.once('close', onClose);
    // Accepted with pauseOnConnect, the client has not read a byte yet (so nothing was lost while
    // dialing); readableFlowing is false, so adding 'data' did not start it.
    client.resume();
  }

  /** onread: the buffer for the upstream's next read (called after every read). */
  readonly buffer = (): Buffer => this.#toClient.next(this.client.writableLength !== 0);

  /** onread: n bytes were read from upstream into buf; false pauses the upstream. */
  readonly callback = (n: number, buf: Uint8Array): boolean => {
    this.#toClient.read(n);
    this.idleTicks = 0;
    this.stats.bytesOut += n;
    return this.client.write((buf as Buffer).subarray(0, n));
  };

  /** The client's onread (see adoptOnRead): the buffer for its next read. */
  readonly clientBuffer = (): Buffer => this.#toUpstream.next((this.upstream as net.Socket).writableLength !== 0);

  /** The client's onread: n bytes were read from the client into buf; false pauses the client. */
  readonly clientCallback = (n: number, buf: Buffer): boolean => {
    this.#toUpstream.read(n);
    this.idleTicks = 0;
    // The endpoint's side was ended for the max connection age: what comes now is dropped.
    if (this.agedAt !== 0) return true;
    this.stats.bytesIn += n;
    return (this.upstream as net.Socket).write(buf.subarray(0, n));
  };

  /** Both sockets are closed: the read buffers may serve another connection. */
  release(): void {
    this.#toClient.release();
    this.#toUpstream.release();
  }

  /**
   * The idle timeout: first a FIN to both peers (after anything still queued for them), as if each
   * had closed its side, so a peer that is merely quiet sees an orderly end and may reconnect; a
   * peer that does not answer with its own FIN by the next sweep is closed (destroy()).
   */
  closeIdle(): void {
    if (this.idleClosing) {
      this.destroy();
      return;
    }
    this.idleClosing = true;
    this.stats.tcpIdleTimeouts++;
    if (!this.client.destroyed) this.client.end();
    const upstream = this.upstream;
    if (upstream !== undefined && !upstream.destroyed) upstream.end();
  }

  /**
   * The max connection age: a FIN to the endpoint after the client bytes still queued for it, as
   * if the client had closed its sending side. The endpoint answers what it has and closes; its
   * FIN reaches the client after those bytes (onEnd). Client bytes read from now on are dropped
   * (the endpoint's side is closed); the client learns to stop with the FIN that follows.
   */
  closeAged(now: number): void {
    if (this.agedAt !== 0) return;
    this.agedAt = now;
    this.stats.maxAgeCloses++;
    const upstream = this.upstream;
    if (upstream !== undefined && !upstream.destroyed) upstream.end();
  }

  /**
   * The age's grace is over and the endpoint has not closed: a FIN to the client as well, and the
   * next sweep closes the rest; but only once the endpoint is quiet (no byte for a whole sweep)
   * and the client has taken everything queued for it, so that a slow reader still gets the
   * endpoint's last bytes (the idle timeout bounds how long that may take). Called at each sweep
   * until then.
   */
  closeAfterGrace(): void {
    if (this.idleClosing || this.idleTicks < 2 || this.client.writableLength !== 0) return;
    this.idleClosing = true;
    if (!this.client.destroyed) this.client.end();
  }

  /** Aborts the connection: both peers get a RST. */
  destroy(): void {
    reset(this.client);
    if (this.upstream !== undefined) reset(this.upstream);
  }
}

function onClientData(this: ForwardedSocket, chunk: Buffer): void {
  const f = this[kForwarder];
  const upstream = f.upstream as net.Socket;
  f.idleTicks = 0;
  f.stats.bytesIn += chunk.length;
  if (f.agedAt !== 0) return;
  // A read that filled Node's 64 KiB read buffer: libuv goes on reading this socket in the same
  // turn, one 'data' per 64 KiB. Corking the upstream until the turn's check phase sends those
  // reads with one writev instead of a write each (bounded: write() returns false past the
  // highWaterMark and the client is paused). Small reads (request/response) are not delayed.
  if (chunk.length >= CORK_READ_BYTES && !f.corked) {
    f.corked = true;
    upstream.cork();
    setImmediate(uncorkUpstream, f);
  }
  if (!upstream.write(chunk)) this.pause();
}

function uncorkUpstream(f: TcpForwarder): void {
  f.corked = false;
  // A no-op if end() uncorked it meanwhile.
  (f.upstream as net.Socket).uncork();
}

// A drain counts as traffic for the sweep (idleTicks): the source was paused for backpressure,
// not quiet, and is read again only from now on.
function onUpstreamDrain(this: ForwardedSocket): void {
  const f = this[kForwarder];
  f.idleTicks = 0;
  f.client.resume();
}

function onClientDrain(this: ForwardedSocket): void {
  const f = this[kForwarder];
  f.idleTicks = 0;
  // With onread, resume() restarts reading only if it was stopped.
  (f.upstream as net.Socket).resume();
}

function peer(s: ForwardedSocket): net.Socket {
  const f = s[kForwarder];
  return s === f.client ? (f.upstream as net.Socket) : f.client;
}

function onEnd(this: ForwardedSocket): void {
  const other = peer(this);
  if (!other.destroyed) other.end();
}

function onError(this: ForwardedSocket): void {
  reset(peer(this));
}

function onClose(this: ForwardedSocket): void {
  const f = this[kForwarder];
  if (--f.open === 0) {
    f.stats.active--;
    (f.endpointStats as EndpointStats).active--;
    f.release();
    f.onClosed(f);
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
