/**
 * One direction's read buffer: a new connection starts with a small one (an idle connection holds
 * it for its whole life), a read that fills it moves to READ_BUFFER_BASE and then ×4 per full read
 * up to READ_BUFFER_MAX (bulk); a small read moves a grown buffer back to READ_BUFFER_BASE.
 */
const READ_BUFFER_INITIAL = 1 << 10;
/**
 * The client side's first buffer: what an idle client connection holds for its whole life. Client
 * requests are mostly small; one that fills it moves to READ_BUFFER_BASE at once.
 */
export const CLIENT_READ_BUFFER_INITIAL = 256;
const READ_BUFFER_BASE = 16 << 10;
const READ_BUFFER_MAX = 1 << 20;
/** A read below this moves a grown read buffer back to the base size. */
const READ_SMALL = READ_BUFFER_BASE >> 2;

/**
 * Base-size read buffers of finished connections, reused by new ones: a connection then costs no
 * buffer allocation. Bounded (4 MiB in all); a buffer goes back only once both sockets are closed,
 * when neither a read nor a write can still reference it.
 */
const FREE_BUFFERS: Buffer[] = [];
const MAX_FREE_BUFFERS = 256;

export class ReadBuffer {
  readonly #initial: number;
  #buf: Buffer | undefined;
  #last = 0;

  constructor(initial = READ_BUFFER_INITIAL) {
    this.#initial = initial;
  }

  /**
   * The buffer for the next read. `busy`: a write of the last read did not complete synchronously
   * and still references the current buffer, so the next read gets a fresh one.
   */
  next(busy: boolean): Buffer {
    let buf = this.#buf;
    if (buf === undefined) {
      // A slice of Node's shared allocation pool: no allocation of its own per connection.
      buf = Buffer.allocUnsafe(this.#initial);
      this.#buf = buf;
      return buf;
    }
    const len = buf.length;
    const last = this.#last;
    let want = len;
    if (last === len) {
      if (len < READ_BUFFER_BASE) want = READ_BUFFER_BASE;
      else if (len < READ_BUFFER_MAX) want = Math.min(len * 4, READ_BUFFER_MAX);
    } else if (last < READ_SMALL && len > READ_BUFFER_BASE) {
      want = READ_BUFFER_BASE;
    }
    if (want !== len || busy) {
      buf = want === READ_BUFFER_BASE ? (FREE_BUFFERS.pop() ?? Buffer.allocUnsafeSlow(want)) : Buffer.allocUnsafe(want);
      this.#buf = buf;
    }
    return buf;
  }

  /** The buffer next() gave last. */
  get current(): Buffer {
    return this.#buf as Buffer;
  }

  /** n bytes were read into the current buffer. */
  read(n: number): void {
    this.#last = n;
  }

  /** The connection is closed: a base-size buffer may serve another connection. */
  release(): void {
    const buf = this.#buf;
    this.#buf = undefined;
    if (buf !== undefined && buf.length === READ_BUFFER_BASE && FREE_BUFFERS.length < MAX_FREE_BUFFERS) FREE_BUFFERS.push(buf);
  }
}
