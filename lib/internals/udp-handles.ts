import dgram from 'node:dgram';
import util from 'node:util';

/**
 * The per-datagram path of a *connected* dgram socket, driven on its UDP handle (Node's udp_wrap)
 * instead of through dgram's send() and 'message' event.
 *
 * Per datagram, dgram adds to the handle's own work: a new SendWrap request with three properties
 * added to it, a one-element list, argument checks, and on receipt a property added to the address
 * object and an event emit. Here a send reuses one request and one list, and a receipt calls the
 * session's function directly. The handle's own work (a buffer, an address object and a callback
 * per datagram) remains: no JavaScript can avoid it.
 *
 * What this relies on is internal to node:dgram: the handle under the socket's 'state symbol', the
 * handle's send(req, list, count, hasCallback) for a connected socket, its onmessage(nread, handle,
 * buf, rinfo) callback, and the SendWrap constructor, taken from the first request dgram itself
 * makes (so process.binding and its deprecation warning stay out). It is used only on the Node
 * majors the specs exercise, when the probe finds every piece, and unless KUP_UDP_HANDLES=0 (then,
 * or when anything is missing, datagrams go through dgram as before).
 */

interface UdpHandle {
  send(req: object, list: Buffer[], count: number, hasCallback: boolean): number;
  onmessage?: unknown;
}

type SendWrapConstructor = new () => Record<string, unknown>;

/** Sends one datagram on a connected socket. */
export type DatagramSender = (msg: Buffer) => void;

/** Node majors whose udp_wrap the specs exercise; any other uses dgram. */
const CHECKED_MAJORS = new Set([20, 21, 22, 23, 24]);

function findStateSymbol(): symbol | undefined {
  if (process.env.KUP_UDP_HANDLES === '0') return undefined;
  if (!CHECKED_MAJORS.has(Number(process.versions.node.split('.')[0]))) return undefined;
  try {
    const probe = dgram.createSocket('udp4');
    const found = Object.getOwnPropertySymbols(probe).find((s) => s.description === 'state symbol');
    const state = found === undefined ? undefined : (probe as unknown as Record<symbol, { handle?: Partial<UdpHandle> } | undefined>)[found];
    const usable = typeof state?.handle?.send === 'function';
    probe.close();
    return usable ? found : undefined;
  } catch {
    return undefined;
  }
}

/** undefined until the first use; then the symbol, or null when this Node cannot. */
let stateSymbol: symbol | null | undefined;
let SendWrap: SendWrapConstructor | undefined;
const EMPTY = Buffer.alloc(0);

function handleOf(socket: dgram.Socket): UdpHandle | undefined {
  if (!udpHandlesInUse()) return undefined;
  const handle = (socket as unknown as Record<symbol, { handle?: UdpHandle | null } | undefined>)[stateSymbol as symbol]?.handle;
  return handle !== null && typeof handle?.send === 'function' ? handle : undefined;
}

/** Whether this process drives UDP handles directly (false: through dgram). */
export function udpHandlesInUse(): boolean {
  stateSymbol ??= findStateSymbol() ?? null;
  return stateSymbol !== null;
}

/**
 * Keeps the SendWrap constructor of the next request dgram makes on this handle, then steps
 * aside: the one send dgram does for us.
 */
function captureSendWrap(handle: UdpHandle): void {
  const original = handle.send;
  handle.send = function (this: UdpHandle, req: object, ...rest: unknown[]): number {
    handle.send = original;
    const ctor = (req as { constructor?: unknown }).constructor;
    if (typeof ctor === 'function' && ctor.name === 'SendWrap') SendWrap = ctor as SendWrapConstructor;
    return (original as (...args: unknown[]) => number).call(this, req, ...rest);
  };
}

/**
 * A sender for a socket that is connected (its connect() callback has run). Errors are dropped as
 * dgram drops them when send() has no callback: a connected socket learns of ICMP errors on receive.
 */
export function connectedSender(socket: dgram.Socket): DatagramSender {
  const handle = handleOf(socket);
  if (handle === undefined) return (msg) => socket.send(msg);
  let req: Record<string, unknown> | undefined;
  const list: Buffer[] = [EMPTY];
  return (msg) => {
    if (req === undefined) {
      if (SendWrap === undefined) {
        captureSendWrap(handle);
        socket.send(msg);
        return;
      }
      req = new SendWrap();
    }
    list[0] = msg;
    // > 0: sent at once (bytes + 1). 0: queued in libuv, which now owns the request: it keeps the
    // datagram alive until sent, and the next send takes a new request. < 0: an error.
    const sent = handle.send(req, list, 1, false);
    list[0] = EMPTY;
    if (sent === 0) {
      req.list = [msg];
      req = undefined;
    }
  };
}

/** Who sent a datagram: the address object the handle makes for every datagram anyway. */
export interface DatagramSource {
  readonly address: string;
  readonly port: number;
}

/**
 * Delivers the datagrams a connected socket receives to onDatagram instead of 'message' events;
 * receive errors (an ICMP port unreachable as ECONNREFUSED) are still emitted as 'error' events.
 * Returns false, changing nothing, when not possible: 'message' events go on.
 */
export function receiveDirect(socket: dgram.Socket, onDatagram: (msg: Buffer, source: DatagramSource) => void): boolean {
  const handle = handleOf(socket);
  if (handle === undefined || typeof handle.onmessage !== 'function') return false;
  handle.onmessage = (nread: number, _handle: unknown, buf: Buffer | undefined, source: DatagramSource): void => {
    if (nread >= 0 && buf !== undefined) onDatagram(buf, source);
    else if (nread < 0) socket.emit('error', errnoException(nread, 'recvmsg'));
  };
  return true;
}

function errnoException(errno: number, syscall: string): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(errno);
  return Object.assign(new Error(`${syscall} ${code}`), { errno, code, syscall });
}
