import test from 'ava';
import { CLIENT_READ_BUFFER_INITIAL, ReadBuffer } from '../../../lib/proxy/tcp/read-buffer.js';

test('a closed connection leaves its first buffer to the next one, which then allocates nothing', (t) => {
  const first = new ReadBuffer(CLIENT_READ_BUFFER_INITIAL);
  const buf = first.next(false);
  t.is(buf.length, CLIENT_READ_BUFFER_INITIAL);
  first.release();
  const second = new ReadBuffer(CLIENT_READ_BUFFER_INITIAL);
  t.is(second.next(false), buf);
  second.release();
});

test('a buffer that a queued write still sends from is never handed to another connection', (t) => {
  const a = new ReadBuffer(CLIENT_READ_BUFFER_INITIAL);
  const small = a.next(false);
  // A full read whose write was queued: the buffer grows, and the busy one is left to the write.
  a.read(small.length);
  const grown = a.next(true);
  t.not(grown, small);
  t.is(grown.length, 16 << 10);
  const b = new ReadBuffer(CLIENT_READ_BUFFER_INITIAL);
  t.not(b.next(false), small);
  a.release();
  b.release();
});
