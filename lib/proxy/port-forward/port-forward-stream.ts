import type net from 'node:net';
import { Duplex, Writable } from 'node:stream';
import type WebSocket from 'ws';
import { PortForwardError } from '../../errors.js';

/** Channel 0 carries the data of the first (only) port: client-node's framing of its input. */
const DATA_CHANNEL = Buffer.of(0);

function ignore(): void {}

/**
 * One client connection's stream through the API server's `pods/portforward` (protocol
 * `v4.channel.k8s.io`: every WebSocket message starts with a channel byte; channel 0 is the
 * port's data, channel 1 its error text; the first message on each is the port number, which
 * client-node's PortForward strips). Presents to the TCP forwarder what a connected upstream
 * net.Socket does (see EndpointConnector): reads go to `onread`, pausing the WebSocket when the
 * client's buffer is full; writes are sent as channel-0 messages whose completion is the write's
 * callback, so a slow API server pushes back on the client.
 *
 * What the protocol cannot carry, and what this does instead:
 * - Half-close from the client: v4 has no "end of data" for a channel (client-node would close
 *   the whole WebSocket, losing the reply). The client's FIN is therefore kept here: the stream
 *   stays open and the pod's reply still flows; the pod does not see the FIN. A server in the pod
 *   that waits for end-of-input before answering waits until the client closes entirely.
 * - Half-close from the pod: the kubelet closes the WebSocket once the pod's connection ends, so
 *   the pod's FIN arrives as the WebSocket's close: it is passed on as an end of data ('end',
 *   the client gets a FIN). Writing after that fails and resets the client, as a TCP peer that
 *   has gone would.
 * - Reset: there is no RST on a WebSocket; resetAndDestroy() closes it, and the kubelet then
 *   closes the pod's connection normally.
 */
export class PortForwardStream extends Duplex {
  /** net.Socket's: the TCP forwarder reads it when closing. */
  readonly connecting = false;
  readonly target: string;
  readonly #onread: net.OnReadOpts | undefined;
  #ws: WebSocket | undefined;
  /** Reading stopped because the onread callback said the client is full. */
  #readPaused = false;
  #podEnded = false;

  constructor(target: string, onread: net.OnReadOpts | undefined, writableHighWaterMark: number) {
    super({ allowHalfOpen: true, writableHighWaterMark });
    this.target = target;
    this.#onread = onread;
    // The readable side carries only the end of data when onread takes the bytes: flowing, so
    // that 'end' is emitted as soon as it is pushed.
    if (onread !== undefined) super.resume();
  }

  /** Where client-node's PortForward writes channel 0 (the data, port frame stripped). */
  readonly output = new Writable({
    write: (chunk: Buffer, _encoding, callback) => {
      this.#deliver(chunk);
      callback();
    },
  });

  /** Where client-node's PortForward writes channel 1 (the kubelet's error text). */
  readonly errors = new Writable({
    write: (chunk: Buffer, _encoding, callback) => {
      if (chunk.length > 0) this.destroy(new PortForwardError(this.target, chunk.toString('utf8').trim()));
      callback();
    },
  });

  /** Starts carrying data over an open WebSocket (the one PortForward.portForward resolved with). */
  attach(ws: WebSocket): void {
    this.#ws = ws;
    ws.on('error', (err) => this.destroy(new PortForwardError(this.target, err.message, { cause: err })));
    ws.on('close', () => {
      this.#podEnded = true;
      if (!this.destroyed) this.push(null);
    });
    if (this.destroyed) ws.close();
  }

  /** n bytes from the pod: into the forwarder's buffers, as a socket's onread gets them. */
  #deliver(chunk: Buffer): void {
    if (chunk.length === 0 || this.destroyed) return;
    const onread = this.#onread;
    if (onread === undefined) {
      if (!this.push(chunk)) this.#pauseReading();
      return;
    }
    const { buffer, callback } = onread;
    let offset = 0;
    let more = true;
    // A message larger than the forwarder's buffer goes in pieces; all of it is delivered (it has
    // been received), and reading stops after it when the client is full.
    while (offset < chunk.length && !this.destroyed) {
      const buf = (typeof buffer === 'function' ? buffer() : buffer) as Buffer;
      const n = Math.min(buf.length, chunk.length - offset);
      chunk.copy(buf, 0, offset, offset + n);
      offset += n;
      if (callback(n, buf) === false) more = false;
    }
    if (!more) this.#pauseReading();
  }

  #pauseReading(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    this.#ws?.pause();
  }

  /** The forwarder's "read again" once the client drained (net.Socket's resume with onread). */
  override resume(): this {
    if (this.#readPaused) {
      this.#readPaused = false;
      this.#ws?.resume();
    }
    return super.resume();
  }

  override _read(): void {
    // Without onread: a read asked for after push() returned false.
    if (this.#onread === undefined && this.#readPaused) {
      this.#readPaused = false;
      this.#ws?.resume();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#send(Buffer.concat([DATA_CHANNEL, chunk]), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.#send(Buffer.concat([DATA_CHANNEL, ...chunks.map((c) => c.chunk)]), callback);
  }

  #send(message: Buffer, callback: (err?: Error | null) => void): void {
    const ws = this.#ws;
    if (ws === undefined || this.#podEnded) {
      callback(new PortForwardError(this.target, 'the pod closed the connection'));
      return;
    }
    ws.send(message, (err) => callback(err === undefined || err === null ? null : new PortForwardError(this.target, err.message, { cause: err })));
  }

  /** The client's FIN: v4 cannot pass it on (see the class comment); the pod's reply keeps flowing. */
  override _final(callback: (err?: Error | null) => void): void {
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const ws = this.#ws;
    if (ws !== undefined) {
      ws.on('error', ignore);
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    }
    callback(err);
  }

  /** net.Socket's reset: a WebSocket has none, so it is closed (see the class comment). */
  resetAndDestroy(): this {
    return this.destroy();
  }
}
