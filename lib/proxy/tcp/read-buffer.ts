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
 * Read buffers of READ_BUFFER_BASE and up that no read or write references any more (a buffer a
 * connection outgrew or shrank from, or held when it closed), by size, reused before allocating:
 * a download that grows its buffer 16 KiB → 1 MiB per response would otherwise allocate (and have
 * the kernel zero) 1.3 MiB per response. Bounded: at most FREE_BYTES_PER_SIZE per size.
 */
const FREE_BUFFERS = new Map<number, Buffer[]>();
const FREE_BYTES_PER_SIZE = 4 << 20;
/** First buffers (below READ_BUFFER_BASE: slices of Node's 8 KiB pools, each holding its pool) are kept by count. */
const FREE_SMALL_PER_SIZE = 256;

function take(size: number): Buffer {
  return FREE_BUFFERS.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

function give(buf: Buffer): void {
  const size = buf.length;
  let free = FREE_BUFFERS.get(size);
  if (free === undefined) FREE_BUFFERS.set(size, (free = []));
  if (size < READ_BUFFER_BASE ? free.length < FREE_SMALL_PER_SIZE : (free.length + 1) * size <= FREE_BYTES_PER_SIZE) free.push(buf);
}

export class ReadBuffer {
  readonly #initial: number;
  #buf: Buffer | undefined;
  #last = 0;

  constructor(initial = READ_BUFFER_INITIAL) {
    this.#initial = initial;
  }

  /**
   * The buffer for the next read. `busy`: a write of the last read did not complete synchronously
   * and still references the current buffer, so the next read gets a fresh one, unless
   * `reuseBusy` (the caller reads nothing until that write completes); a busy buffer is never
   * given to another connection.
   */
  next(busy: boolean, reuseBusy = false): Buffer {
    let buf = this.#buf;
    if (buf === undefined) {
      // One a closed connection left, else a slice of Node's shared allocation pool.
      buf = FREE_BUFFERS.get(this.#initial)?.pop() ?? Buffer.allocUnsafe(this.#initial);
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
    if (want !== len || (busy && !reuseBusy)) {
      // A busy buffer is still being written from: it is dropped, not reused.
      if (!busy) give(buf);
      buf = take(want);
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
    if (buf !== undefined) give(buf);
  }
}
