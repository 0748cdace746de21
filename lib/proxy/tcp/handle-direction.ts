import type { TcpHandle } from '../../internals/tcp-handles.js';
import type { HandleForwarder } from './handle-forwarder.js';
import type { ReadBuffer } from './read-buffer.js';

/** One direction of a connection: what is read from src is written to dst. */
export class Direction {
  readonly f: HandleForwarder;
  readonly fromClient: boolean;
  readonly buffer: ReadBuffer;
  src!: TcpHandle;
  dst!: TcpHandle;
  /** A write to dst is queued: src is not read until it completes (backpressure). */
  writing = false;
  /** dst is to get a FIN once nothing is queued for it. */
  ending = false;
  /** dst's FIN is issued (sent after what is queued for it, or by its close). */
  shut = false;
  /** src sent its FIN: nothing more comes from it. */
  srcEnded = false;

  constructor(f: HandleForwarder, fromClient: boolean, buffer: ReadBuffer) {
    this.f = f;
    this.fromClient = fromClient;
    this.buffer = buffer;
  }
}
