import { NativeAddon } from './native-addon.js';

/**
 * The optional native UDP data path (native/kup_udp.c, a Node-API addon built at install time when
 * a compiler is there): a session's two connected sockets are relayed with recvmmsg/sendmmsg on
 * the loop's own poll, with no JavaScript and no allocation per datagram. Node's udp_wrap spends
 * more CPU per datagram than the kernel does (a 64 KiB buffer allocated and shrunk, an ArrayBuffer,
 * a Buffer and an address object each time); the addon spends none of it.
 *
 * JavaScript keeps the policy: it picks the endpoint and opens the session, closes it, and reads
 * its counters. It is called only for an upstream error (the endpoint's ICMP port unreachable), a
 * reply socket error, and another client's datagram that reached a reply socket before connect().
 *
 * Used when the addon loads and exports every function, unless KUP_UDP_NATIVE=0; otherwise the
 * sessions run on dgram sockets (udp-handles.ts) as before. One Node-API build serves Node 20 and 24.
 */

interface Binding {
  createGroup(onEvent: RawEventHandler, totals: Float64Array, maxSessions: number): object;
  open(group: object, localIp: string, localPort: number, clientIp: string, clientPort: number, endpointIp: string, endpointPort: number): number;
  send(id: number, msg: Buffer): number;
  close(id: number): boolean;
  stats(id: number): [number, number, number, number, number] | undefined;
  takeActive(group: object): Float64Array;
  sessionCount(group: object): number;
}

type RawEventHandler = (kind: number, id: number, code: string | null, msg?: Buffer, address?: string, port?: number) => void;

const EVENT_UPSTREAM_ERROR = 1;
const EVENT_REPLY_ERROR = 2;
const EVENT_STRAY = 3;

const ADDON = new NativeAddon<Binding>('kup_udp.node', 'KUP_UDP_NATIVE', ['createGroup', 'open', 'send', 'close', 'stats', 'takeActive', 'sessionCount']);

function nativeBinding(): Binding | null {
  return ADDON.binding;
}

/** Whether UDP sessions can run on the native data path in this process. */
export function udpNativeAvailable(): boolean {
  return nativeBinding() !== null;
}

/** Why the native data path is not used ('' when it is). */
export function udpNativeUnavailableReason(): string {
  return ADDON.unavailableReason;
}

/** What a session group tells its owner; ids are those open() returned. */
export interface NativeSessionEvents {
  /** The upstream socket reported an error (ECONNREFUSED: the endpoint's port unreachable). */
  upstreamError(id: number, code: string): void;
  /** The reply socket reported an error other than the client's port being unreachable. */
  replyError(id: number, code: string): void;
  /** Another client's datagram, queued on the session's reply socket before it was connected. */
  stray(id: number, msg: Buffer, address: string, port: number): void;
}

export interface NativeAddress {
  readonly address: string;
  readonly port: number;
}

/** Counters of one native session; idleMs is the time since its last datagram either way. */
export interface NativeSessionStats {
  readonly packetsIn: number;
  readonly bytesIn: number;
  readonly packetsOut: number;
  readonly bytesOut: number;
  readonly idleMs: number;
}

/**
 * The native sessions of one service port. Totals are kept in memory the addon writes, so reading
 * them costs no call: bytesIn / bytesOut count what was sent on (client to endpoint / back).
 */
export class NativeSessionGroup {
  readonly #binding: Binding;
  readonly #group: object;
  readonly #totals = new Float64Array(4);

  /** A group on the native data path; undefined when this process has none (see udpNativeUnavailableReason). */
  static create(events: NativeSessionEvents, maxSessions: number): NativeSessionGroup | undefined {
    const b = nativeBinding();
    return b === null ? undefined : new NativeSessionGroup(b, events, maxSessions);
  }

  private constructor(b: Binding, events: NativeSessionEvents, maxSessions: number) {
    this.#binding = b;
    this.#group = b.createGroup(
      (kind, id, code, msg, address, port) => {
        if (kind === EVENT_UPSTREAM_ERROR) events.upstreamError(id, code ?? 'EIO');
        else if (kind === EVENT_REPLY_ERROR) events.replyError(id, code ?? 'EIO');
        else if (kind === EVENT_STRAY && msg !== undefined) events.stray(id, msg, address ?? '', port ?? 0);
      },
      this.#totals,
      maxSessions,
    );
  }

  get bytesIn(): number {
    return this.#totals[0] as number;
  }

  get bytesOut(): number {
    return this.#totals[1] as number;
  }

  get packetsIn(): number {
    return this.#totals[2] as number;
  }

  get packetsOut(): number {
    return this.#totals[3] as number;
  }

  get size(): number {
    return this.#binding.sessionCount(this.#group);
  }

  /**
   * Opens a session: a reply socket bound to `local` and connected to `client`, an upstream socket
   * connected to `endpoint`. Throws an Error with the errno's code (EMFILE, EADDRINUSE...) or
   * ERR_UDP_NATIVE_SESSION_LIMIT when the group holds maxSessions.
   */
  open(local: NativeAddress, client: NativeAddress, endpoint: NativeAddress): number {
    return this.#binding.open(this.#group, local.address, local.port, client.address, client.port, endpoint.address, endpoint.port);
  }

  /** Sends a datagram to the session's endpoint; bytes sent, or a negative errno (-1 when closed). */
  send(id: number, msg: Buffer): number {
    return this.#binding.send(id, msg);
  }

  /** Closes the session's sockets; false when it was closed already. */
  close(id: number): boolean {
    return this.#binding.close(id);
  }

  stats(id: number): NativeSessionStats | undefined {
    const s = this.#binding.stats(id);
    return s === undefined ? undefined : { packetsIn: s[0], bytesIn: s[1], packetsOut: s[2], bytesOut: s[3], idleMs: s[4] };
  }

  /** Sessions that passed a datagram since the last call, with their idle time: [id, idleMs] pairs. */
  takeActive(): Float64Array {
    return this.#binding.takeActive(this.#group);
  }
}
