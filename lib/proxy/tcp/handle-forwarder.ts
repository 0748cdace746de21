import { TCP_HANDLES, WRITE_DONE, WRITE_QUEUED } from '../../internals/tcp-handles.js';
import type { HandleRequest, TcpHandle, TcpHandles } from '../../internals/tcp-handles.js';
import type { EndpointStats, ProxyStats } from '../proxy-stats.js';
import type { IdleTracked } from './idle-sweep.js';
import { Direction } from './handle-direction.js';
import { CLIENT_READ_BUFFER_INITIAL, ReadBuffer } from './read-buffer.js';

// Only constructed where the handles are usable (TcpProxySocket checks TCP_HANDLES first).
const H = TCP_HANDLES as TcpHandles;

/** The direction a handle is read for (set on both handles once forwarding starts). */
const kReads = Symbol('reads');
type ReadHandle = TcpHandle & { [kReads]: Direction };

/**
 * TcpForwarder's job on libuv handles (see lib/internals/tcp-handles.ts) instead of net.Socket:
 * the same rules, with less work per connection and per read.
 *
 * - Reads go into the ReadBuffers of the two directions, reused while writes complete at once.
 * - Backpressure: one write in flight per direction; while it is queued in libuv the source is
 *   not read, so a slow reader holds at most one read buffer in this process.
 * - Half-close: a FIN from one side becomes a FIN to the other after what is queued for it; the
 *   other direction keeps flowing. A handle closes once it has sent its FIN and received one;
 *   one whose FIN would be the last thing it does is closed at once (the close sends the FIN), which
 *   saves a shutdown() per connection.
 * - Reset: a read or write error on one side closes it and resets the other (RST).
 * - stats.active and the endpoint's active count drop, and onClosed runs, once both are closed.
 */
export class HandleForwarder implements IdleTracked {
  readonly client: TcpHandle;
  upstream: TcpHandle | undefined;
  readonly stats: ProxyStats;
  endpointStats: EndpointStats | undefined;
  readonly onClosed: (forwarder: HandleForwarder) => void;
  idleTicks = 0;
  idleClosing = false;
  startedAt = 0;
  ageJitter = -1;
  agedAt = 0;
  /** client → upstream and upstream → client. */
  readonly #up: Direction;
  readonly #down: Direction;
  #clientClosed = false;
  #upstreamClosed = false;

  constructor(client: TcpHandle, stats: ProxyStats, onClosed: (forwarder: HandleForwarder) => void) {
    this.client = client;
    this.stats = stats;
    this.onClosed = onClosed;
    this.#up = new Direction(this, true, new ReadBuffer(CLIENT_READ_BUFFER_INITIAL));
    this.#down = new Direction(this, false, new ReadBuffer());
  }

  /** Whether the client is closed already (destroy() before the dial ended). */
  get clientClosed(): boolean {
    return this.#clientClosed;
  }

  /** Starts forwarding; header (PROXY protocol) goes to the upstream before the client's first byte. */
  start(upstream: TcpHandle, endpointStats: EndpointStats, header?: Buffer): void {
    const client = this.client;
    this.upstream = upstream;
    this.endpointStats = endpointStats;
    this.startedAt = performance.now();
    this.stats.active++;
    endpointStats.active++;
    const up = this.#up;
    const down = this.#down;
    up.src = client;
    up.dst = upstream;
    down.src = upstream;
    down.dst = client;
    // The client has TCP_NODELAY from its accept (see TcpHandles.takeAccepts).
    upstream.setNoDelay(true);
    (client as ReadHandle)[kReads] = up;
    (upstream as ReadHandle)[kReads] = down;
    client.onread = onRead;
    upstream.onread = onRead;
    client.useUserBuffer(up.buffer.next(false));
    upstream.useUserBuffer(down.buffer.next(false));
    upstream.readStart();
    if (header !== undefined) {
      const r = write(up, header);
      if (r < 0) {
        this.abortFrom(upstream);
        return;
      }
      // The client is read once the header is out.
      if (r === WRITE_QUEUED) up.writing = true;
    }
    if (!up.writing) client.readStart();
  }

  /** Both handles are closed: the read buffers may serve another connection. */
  release(): void {
    this.#up.buffer.release();
    this.#down.buffer.release();
  }

  /** The idle timeout: a FIN to both peers first; at the next sweep, whatever is still open is reset. */
  closeIdle(): void {
    if (this.idleClosing) {
      this.destroy();
      return;
    }
    this.idleClosing = true;
    this.stats.tcpIdleTimeouts++;
    this.end(this.#down);
    this.end(this.#up);
  }

  /** The max connection age: a FIN to the endpoint; client bytes are dropped from now on. See TcpForwarder.closeAged(). */
  closeAged(now: number): void {
    if (this.agedAt !== 0) return;
    this.agedAt = now;
    this.stats.maxAgeCloses++;
    this.end(this.#up);
  }

  /** The age's grace is over: a FIN to the client too, once the endpoint is quiet and the client took what was queued for it. */
  closeAfterGrace(): void {
    if (this.idleClosing || this.idleTicks < 2 || this.#down.writing) return;
    this.idleClosing = true;
    this.end(this.#down);
  }

  /** Aborts the connection: both peers get a RST. */
  destroy(): void {
    this.close(this.client, true);
    if (this.upstream !== undefined) this.close(this.upstream, true);
  }

  /** d's destination gets a FIN once nothing is queued for it. */
  end(d: Direction): void {
    if (d.ending || this.isClosed(d.dst)) return;
    d.ending = true;
    if (!d.writing) this.finish(d);
  }

  /** The FIN to d's destination, nothing being queued for it. */
  finish(d: Direction): void {
    if (d.shut || this.isClosed(d.dst)) return;
    d.shut = true;
    const other = d === this.#up ? this.#down : this.#up;
    if (other.srcEnded) {
      // The destination has sent its FIN and has nothing queued: its close sends ours.
      this.close(d.dst, false);
      return;
    }
    // Not waited for: the destination is closed once its own FIN comes (closeIfDone), and a close
    // before libuv got to the shutdown sends the FIN all the same, nothing being queued.
    if (H.shutdown(d.dst) < 0) this.abortFrom(d.dst);
  }

  /** A handle that has received its FIN and been given ours is closed. */
  closeIfDone(h: TcpHandle): void {
    const reader = h === this.client ? this.#up : this.#down;
    const writer = h === this.client ? this.#down : this.#up;
    if (reader.srcEnded && writer.shut) this.close(h, false);
  }

  /** An error on h: it is closed, its peer reset. */
  abortFrom(h: TcpHandle): void {
    this.close(h, false);
    const other = h === this.client ? this.upstream : this.client;
    if (other !== undefined) this.close(other, true);
  }

  isClosed(h: TcpHandle): boolean {
    return h === this.client ? this.#clientClosed : this.#upstreamClosed;
  }

  close(h: TcpHandle, rst: boolean): void {
    const isClient = h === this.client;
    if (isClient ? this.#clientClosed : this.#upstreamClosed) return;
    if (isClient) this.#clientClosed = true;
    else this.#upstreamClosed = true;
    // Once our FIN is issued libuv cannot reset any more (EINVAL): a plain close is all there is.
    const shut = (isClient ? this.#down : this.#up).shut;
    if (!rst || shut || h.reset() !== 0) h.close();
    if (this.upstream === undefined) return;
    if (this.#clientClosed && this.#upstreamClosed) {
      this.stats.active--;
      (this.endpointStats as EndpointStats).active--;
      this.release();
      this.onClosed(this);
    }
  }
}

/**
 * The request of every write that completes at once, of any connection (none is made per direction):
 * Node uses it only for a write it must queue, which keeps it until onWritten; the next gets a new one.
 */
let spareRequest: HandleRequest | undefined;

/** Writes buf to d's destination: H.write's result. */
function write(d: Direction, buf: Uint8Array): number {
  const req = (spareRequest ??= H.newRequest(onWritten, undefined));
  const r = H.write(d.dst, req, buf);
  if (r !== WRITE_DONE) {
    req.owner = d;
    spareRequest = undefined;
  }
  return r;
}

function onRead(this: ReadHandle): Uint8Array | undefined {
  const d = this[kReads];
  const f = d.f;
  const n = H.readResult();
  if (n > 0) {
    f.idleTicks = 0;
    const rb = d.buffer;
    rb.read(n);
    if (d.fromClient) {
      // The endpoint's side was ended for the max connection age: what comes now is dropped.
      if (f.agedAt !== 0) return undefined;
      f.stats.bytesIn += n;
    } else {
      f.stats.bytesOut += n;
    }
    if (d.shut) {
      // The destination got our FIN (the idle timeout): bytes for it abort the connection, as a
      // write after end() does on the net path.
      f.destroy();
      return undefined;
    }
    const buf = rb.current;
    const r = write(d, n === buf.length ? buf : buf.subarray(0, n));
    if (r < 0) {
      f.abortFrom(d.dst);
      return undefined;
    }
    if (r === WRITE_QUEUED) {
      d.writing = true;
      this.readStop();
    }
    // A queued write stops reading until it completes, so the next read cannot overwrite what it
    // still sends: the same buffer serves again (but is not given to others if outgrown).
    const next = rb.next(r === WRITE_QUEUED, true);
    return next === buf ? undefined : next;
  }
  if (n === 0) return undefined;
  if (n === H.EOF) {
    this.readStop();
    d.srcEnded = true;
    f.end(d);
    f.closeIfDone(this);
    return undefined;
  }
  // A read error (ECONNRESET): this side is gone, the other is reset.
  f.abortFrom(this);
  return undefined;
}

function onWritten(this: HandleRequest, status: number): void {
  const d = this.owner as Direction;
  const f = d.f;
  if (f.isClosed(d.dst)) return;
  if (status < 0) {
    f.abortFrom(d.dst);
    return;
  }
  d.writing = false;
  // As a 'drain' on the net path, a completed write counts as traffic for the sweep: the source
  // was held back, not quiet, and is read again only from now on.
  f.idleTicks = 0;
  if (d.ending) f.finish(d);
  else if (!d.srcEnded && !f.isClosed(d.src)) d.src.readStart();
}

/** Sends a RST on a handle that is not forwarding (yet): close with SO_LINGER 0. */
export function resetHandle(h: TcpHandle): void {
  if (h.reset() !== 0) h.close();
}
