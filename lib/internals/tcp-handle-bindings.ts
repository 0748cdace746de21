import { getSystemErrorName } from 'node:util';
import type { HandleRequest, TcpHandle } from './tcp-handles.js';

// The feature probe of lib/internals/tcp-handles.ts (see there): the only code that asks Node for
// its internal bindings.

/** What the handles are made of: Node's internal tcp_wrap and stream_wrap bindings. */
export interface TcpBindings {
  readonly TCP: new (type: number) => TcpHandle & {
    connect(req: object, ip: string, port: number): number;
    connect6(req: object, ip: string, port: number): number;
    bind(ip: string, port: number): number;
    bind6(ip: string, port: number, flags: number): number;
    listen(backlog: number): number;
    onconnection: ((err: number, client: TcpHandle | undefined) => void) | null;
  };
  readonly TCPConnectWrap: new () => Record<string, unknown>;
  readonly SOCKET: number;
  /** A listening handle's type, with the flag of an IPv6-only bind; undefined where this Node lacks them (listen on `net`). */
  readonly SERVER: number | undefined;
  readonly UV_TCP_IPV6ONLY: number;
  readonly WriteWrap: new () => HandleRequest & { handle: TcpHandle; buffer: Uint8Array | undefined };
  readonly ShutdownWrap: new () => HandleRequest & { handle: TcpHandle };
  readonly state: Int32Array;
  readonly kReadBytesOrError: number;
  readonly kLastWriteWasAsync: number;
}

const LISTEN_METHODS = ['bind', 'bind6', 'listen'];
const HANDLE_METHODS = ['readStart', 'readStop', 'useUserBuffer', 'setNoDelay', 'getpeername', 'getsockname', 'close', 'reset', 'connect', 'connect6', 'writeBuffer', 'shutdown'];

function pendingDeprecation(): boolean {
  return process.execArgv.includes('--pending-deprecation') || /--pending-deprecation/.test(process.env.NODE_OPTIONS ?? '') || process.env.NODE_PENDING_DEPRECATION === '1';
}

/**
 * The bindings, where this Node offers all that TcpHandles uses (checked on a throwaway handle);
 * undefined where not, or where process.binding() would print a deprecation warning.
 */
export function probeTcpBindings(): TcpBindings | undefined {
  if (pendingDeprecation()) return undefined;
  try {
    const binding = (process as unknown as { binding?: (name: string) => Record<string, unknown> }).binding;
    if (typeof binding !== 'function') return undefined;
    const tcp = binding('tcp_wrap');
    const stream = binding('stream_wrap');
    const TCP = tcp.TCP as TcpBindings['TCP'];
    const constants = tcp.constants as { SOCKET?: number; SERVER?: number; UV_TCP_IPV6ONLY?: number } | undefined;
    const state = stream.streamBaseState;
    if (typeof TCP !== 'function' || typeof tcp.TCPConnectWrap !== 'function' || typeof constants?.SOCKET !== 'number') return undefined;
    if (typeof stream.WriteWrap !== 'function' || typeof stream.ShutdownWrap !== 'function' || !(state instanceof Int32Array)) return undefined;
    if (typeof stream.kReadBytesOrError !== 'number' || typeof stream.kLastWriteWasAsync !== 'number') return undefined;
    const probe = new TCP(constants.SOCKET) as unknown as Record<string, unknown>;
    const missing = HANDLE_METHODS.some((m) => typeof probe[m] !== 'function');
    const listens = LISTEN_METHODS.every((m) => typeof probe[m] === 'function') && typeof constants.SERVER === 'number' && typeof constants.UV_TCP_IPV6ONLY === 'number';
    (probe as unknown as TcpHandle).close();
    if (missing || getSystemErrorName(-4095) !== 'EOF') return undefined;
    return {
      TCP,
      TCPConnectWrap: tcp.TCPConnectWrap as TcpBindings['TCPConnectWrap'],
      SOCKET: constants.SOCKET,
      SERVER: listens ? constants.SERVER : undefined,
      UV_TCP_IPV6ONLY: constants.UV_TCP_IPV6ONLY ?? 0,
      WriteWrap: stream.WriteWrap as TcpBindings['WriteWrap'],
      ShutdownWrap: stream.ShutdownWrap as TcpBindings['ShutdownWrap'],
      state,
      kReadBytesOrError: stream.kReadBytesOrError,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
  } catch {
    return undefined;
  }
}
