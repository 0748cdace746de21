import net from 'node:net';
import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { probeTcpBindings } from './tcp-handle-bindings.js';
import type { TcpBindings } from './tcp-handle-bindings.js';

/**
 * libuv's TCP handles as Node's internal tcp_wrap and stream_wrap bindings expose them: what
 * net.Socket is built on, without the Socket, its streams and their per-connection state. With
 * tcp-handle-bindings.ts (the feature probe at load), the only place this project touches those
 * bindings (an internal API: it may change in any Node release). Where the probe fails,
 * TCP_HANDLES is undefined and the callers stay on `net`. Checked on Node 20 and 24 by the specs.
 *
 * process.binding() prints a deprecation warning (DEP0111) only under --pending-deprecation; a
 * process started that way does not use the handles at all, so it prints nothing either.
 */

/** The part of a TCP handle this project uses. Every method returns 0 or a negative errno. */
export interface TcpHandle {
  /** Called with `this` the handle; the number of bytes is readResult(). Returns the next read buffer, if it changes. */
  onread: ((this: never) => Uint8Array | undefined) | null;
  readStart(): number;
  readStop(): number;
  /** Reads go into this buffer (and the ones onread returns) instead of one allocated per read. */
  useUserBuffer(buf: Uint8Array): void;
  setNoDelay(enable: boolean): number;
  getpeername(out: Record<string, unknown>): number;
  getsockname(out: Record<string, unknown>): number;
  /** Closes the descriptor now; pending writes and shutdowns complete with an error. */
  close(callback?: () => void): void;
  /** Closes with SO_LINGER 0 (a RST); fails (EINVAL) once a shutdown was issued. */
  reset(callback?: () => void): number;
}

/** A write or shutdown request: its oncomplete is called with `this` the request. */
export interface HandleRequest {
  oncomplete: (this: HandleRequest, status: number) => void;
  /** Whatever the caller hangs on it (its connection). */
  owner: unknown;
}

/** write(): all written at once; the request may serve the next write. */
export const WRITE_DONE = 0;
/** write(): queued in libuv; the request and buffer are in use until its oncomplete. */
export const WRITE_QUEUED = 1;
/** shutdown(): the FIN is already sent (or the socket is not connected); oncomplete will not be called. */
export const SHUTDOWN_DONE = 1;

export interface Address {
  readonly address: string;
  readonly port: number;
}

export interface TcpHandles {
  /** libuv's end-of-stream read result. */
  readonly EOF: number;
  /** Bytes (or a negative errno, or EOF) of the read being reported to onread. */
  readResult(): number;
  /**
   * Takes over the accepts of a listening net.Server: each accepted connection comes to
   * onConnection as a handle that does not read yet and has TCP_NODELAY set, or an accept error as
   * its code. False (and nothing changed) when the server has no handle of the expected kind.
   */
  takeAccepts(server: net.Server, onConnection: (error: string | undefined, handle: TcpHandle | undefined) => void): boolean;
  /**
   * Binds a new handle to ip:port (an IP literal) and listens, without a net.Server: each accepted
   * connection comes to onConnection as with takeAccepts(). A failure is the error net.Server
   * would emit for it (code, errno, syscall 'listen', address, port), nothing left open. Undefined
   * where this Node's bindings do not offer it.
   */
  readonly listen: ((ip: string, port: number, backlog: number, ipv6Only: boolean, onConnection: (error: string | undefined, handle: TcpHandle | undefined) => void) => TcpHandle | Error) | undefined;
  /**
   * Starts connecting a new handle to ip:port (an IP literal); done(0 or a negative errno, handle)
   * once, later. A synchronous failure (out of descriptors) is returned as its negative errno, done
   * not called. The handle is read from the moment it connects: done must set its onread (and
   * call readStart(), which is harmless when it already reads) or close it.
   */
  connect(ip: string, port: number, done: (status: number, handle: TcpHandle) => void): TcpHandle | number;
  newRequest(oncomplete: (this: HandleRequest, status: number) => void, owner: unknown): HandleRequest;
  /** WRITE_DONE, WRITE_QUEUED, or a negative errno. buf must stay untouched until then. */
  write(handle: TcpHandle, req: HandleRequest, buf: Uint8Array): number;
  /**
   * Sends a FIN after the queued writes: 0 (issued) or SHUTDOWN_DONE, or a negative errno. No
   * completion is reported: what follows a FIN (closing the handle) needs no wait for it, since a
   * close after the queued writes sends the FIN too.
   */
  shutdown(handle: TcpHandle): number;
  /** The peer's or local address, or undefined once the connection is gone. */
  peer(handle: TcpHandle): Address | undefined;
  local(handle: TcpHandle): Address | undefined;
  /** The error code of a negative errno: 'ECONNREFUSED'. */
  errorName(errno: number): string;
}

/** The onread of a connecting handle: never called while connecting (see connect()). */
function stopReading(this: TcpHandle): undefined {
  this.readStop();
  return undefined;
}

/** libuv's ENOTCONN: a shutdown of a socket the peer already reset counts as done. */
const UV_ENOTCONN = -107;

function make(b: TcpBindings): TcpHandles {
  const { state, kReadBytesOrError, kLastWriteWasAsync } = b;
  function afterConnect(this: { done: (status: number, handle: TcpHandle) => void }, status: number, handle: TcpHandle): void {
    this.done(status, handle);
  }
  const address = (handle: TcpHandle, local: boolean): Address | undefined => {
    const out: Record<string, unknown> = {};
    const err = local ? handle.getsockname(out) : handle.getpeername(out);
    if (err !== 0 || typeof out.address !== 'string' || typeof out.port !== 'number') return undefined;
    return { address: out.address, port: out.port };
  };
  const accept = (handle: InstanceType<TcpBindings['TCP']>, onConnection: (error: string | undefined, handle: TcpHandle | undefined) => void): void => {
    // Linux copies TCP_NODELAY from the listening socket to each socket it accepts: set once
    // here, it saves a setsockopt per connection. Elsewhere, each accepted socket gets its own.
    const inherited = process.platform === 'linux' && handle.setNoDelay(true) === 0;
    handle.onconnection = (err: number, client: TcpHandle | undefined) => {
      if (err) {
        onConnection(getSystemErrorName(err), undefined);
        return;
      }
      if (!inherited) (client as TcpHandle).setNoDelay(true);
      onConnection(undefined, client);
    };
  };
  const SERVER = b.SERVER;
  return {
    EOF: -4095,
    readResult: () => state[kReadBytesOrError] as number,
    takeAccepts(server, onConnection) {
      const handle = (server as unknown as { _handle?: { onconnection?: unknown } | null })._handle;
      if (handle == null || !(handle instanceof b.TCP) || typeof handle.onconnection !== 'function') return false;
      accept(handle, onConnection);
      return true;
    },
    listen:
      SERVER === undefined
        ? undefined
        : (ip, port, backlog, ipv6Only, onConnection) => {
            // As net.Server.listen does it (createServerHandle, then listen), minus the Server.
            const handle = new b.TCP(SERVER);
            let err = ip.includes(':') ? handle.bind6(ip, port, ipv6Only ? b.UV_TCP_IPV6ONLY : 0) : handle.bind(ip, port);
            if (err === 0) err = handle.listen(backlog);
            if (err !== 0) {
              handle.close();
              return listenException(err, ip, port);
            }
            accept(handle, onConnection);
            return handle;
          },
    connect(ip, port, done) {
      const handle = new b.TCP(b.SOCKET);
      const req = new b.TCPConnectWrap();
      req.oncomplete = afterConnect;
      req.done = done;
      req.address = ip;
      req.port = port;
      // An IP literal: a colon makes it IPv6 (cheaper than net.isIPv6's pattern, once per connection).
      const err = ip.includes(':') ? handle.connect6(req, ip, port) : handle.connect(req, ip, port);
      if (err !== 0) {
        handle.close();
        return err;
      }
      // Reading from now on: libuv then keeps the descriptor in epoll across the connect's
      // completion and changes its events once (EPOLL_CTL_MOD), where a readStart() after the
      // connect costs an EPOLL_CTL_ADD that fails (EEXIST) and a MOD. libuv reports the connect
      // before any read, and done takes over the handle before any read can come.
      handle.onread = stopReading;
      handle.readStart();
      return handle;
    },
    newRequest(oncomplete, owner) {
      const req = new b.WriteWrap();
      req.oncomplete = oncomplete;
      req.owner = owner;
      return req;
    },
    write(handle, req, buf) {
      const w = req as InstanceType<TcpBindings['WriteWrap']>;
      w.handle = handle;
      const err = (handle as unknown as { writeBuffer(req: object, buf: Uint8Array): number }).writeBuffer(w, buf);
      if (err !== 0) return err;
      if (state[kLastWriteWasAsync] === 0) return WRITE_DONE;
      // Referenced until oncomplete: the bytes are written from it.
      w.buffer = buf;
      return WRITE_QUEUED;
    },
    shutdown(handle) {
      // Without an oncomplete, Node does not call into JavaScript when the FIN is out.
      const s = new b.ShutdownWrap();
      s.handle = handle;
      const err = (handle as unknown as { shutdown(req: object): number }).shutdown(s);
      return err === 1 || err === UV_ENOTCONN ? SHUTDOWN_DONE : err;
    },
    peer: (handle) => address(handle, false),
    local: (handle) => address(handle, true),
    errorName: (errno) => getSystemErrorName(errno),
  };
}

/** The error net.Server emits for a failed bind or listen: `listen EADDRINUSE: address already in use 127.0.0.1:80`. */
export function listenException(errno: number, address: string, port: number): Error {
  const [code, message] = getSystemErrorMap().get(errno) ?? ['UNKNOWN', 'unknown error'];
  const details = port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const ex = new Error(`listen ${code}: ${message}${details}`) as NodeJS.ErrnoException;
  ex.code = code;
  ex.errno = errno;
  ex.syscall = 'listen';
  Object.assign(ex, port > 0 ? { address, port } : { address });
  return ex;
}

/**
 * The native handle of a listening net.Server, for another process to accept on (sent with
 * child_process send(), which takes handles); undefined when it is not listening.
 */
export function listeningHandle(server: net.Server): object | undefined {
  return (server as unknown as { _handle?: object | null })._handle ?? undefined;
}

const BINDINGS = probeTcpBindings();

/** The handle operations, or undefined where this Node does not offer them (stay on `net`). */
export const TCP_HANDLES: TcpHandles | undefined = BINDINGS === undefined ? undefined : make(BINDINGS);
