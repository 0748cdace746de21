import net from 'node:net';

/**
 * net.Socket's onread option (read straight into a buffer of ours, no Readable chunk per read) for
 * sockets a net.Server accepted, which Node does not offer: the server constructs them.
 *
 * It sets what the onread option would have set. Those fields are symbols private to node:net,
 * found once by their descriptions on a socket constructed with onread; if this Node has none of
 * them, or its handles cannot take a user buffer, adoptOnRead() says so and the caller reads with
 * 'data' events as before. Checked on Node 20 and 24 by the specs.
 */

type Gen = () => Buffer;
type Callback = (n: number, buf: Buffer) => boolean;

interface OnReadSymbols {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly gen: symbol;
}

function findSymbols(): OnReadSymbols | undefined {
  try {
    // @types/node lists onread for net.connect() only; the Socket constructor takes it too.
    const probe = new net.Socket({ onread: { buffer: () => Buffer.alloc(1), callback: () => true } } as net.SocketConstructorOpts);
    const by = (name: string): symbol | undefined => Object.getOwnPropertySymbols(probe).find((s) => s.description === name);
    const buffer = by('kBuffer');
    const callback = by('kBufferCb');
    const gen = by('kBufferGen');
    probe.destroy();
    if (buffer === undefined || callback === undefined || gen === undefined) return undefined;
    return { buffer, callback, gen };
  } catch {
    return undefined;
  }
}

const SYMBOLS = findSymbols();

/** Whether adoptOnRead can work in this Node at all. */
export const ACCEPTED_ONREAD_SUPPORTED = SYMBOLS !== undefined;

/**
 * Makes a paused, accepted socket read into gen()'s buffers and report each read to callback
 * (false stops reading until resume()). Returns false, changing nothing, when not possible.
 * Must run before the socket reads anything (pauseOnConnect, not yet resumed).
 */
export function adoptOnRead(socket: net.Socket, gen: Gen, callback: Callback): boolean {
  if (SYMBOLS === undefined) return false;
  const handle = (socket as unknown as { _handle: { useUserBuffer?: (buf: Buffer) => void } | null })._handle;
  if (handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const first = gen();
  const s = socket as unknown as Record<symbol, unknown>;
  s[SYMBOLS.buffer] = first;
  s[SYMBOLS.gen] = gen;
  s[SYMBOLS.callback] = callback;
  handle.useUserBuffer(first);
  return true;
}
