import { NativeAddon } from './native-addon.js';

/**
 * The optional native TCP data path (native/kup_tcp.c, a Node-API addon built at install time when
 * a compiler is there): once a connection's upstream is connected, its two descriptors are relayed
 * with recv/send on the loop's own poll, with no JavaScript per read. On the handle path each read
 * costs two calls into JavaScript (the read and, for a request and its response, the other
 * direction's read); the addon spends none, and calls JavaScript at a connection's end, once for
 * all the connections of a port that ended in the same wakeup of the loop.
 *
 * The libuv handles stay open (idle) while the addon relays their descriptors, and JavaScript closes
 * them when it is told the relay is over (or after it stopped it): the descriptors are never
 * closed twice and never reused under a running relay.
 *
 * Used when the addon loads and exports every function, unless KUP_TCP_NATIVE=0; otherwise the
 * connections are forwarded in JavaScript (handle-forwarder.ts) as before. One Node-API build
 * serves Node 20 and 24.
 */

interface Binding {
  /**
   * onFinished gets the relays and dials that ended in one wakeup of the loop: owner, flags (a
   * relay's end) or owner, code (a dial's: '' connected, or the errno's name)...
   */
  createGroup(onFinished: (ended: unknown[]) => void, totals: Float64Array): object;
  relay(group: object, clientFd: number, upstreamFd: number, owner: object, header: Buffer | undefined): number;
  dial(group: object, ip: string, port: number, owner: object): number;
  attach(id: number, clientFd: number, owner: object, header: Buffer | undefined, ownsClient: boolean): void;
  end(id: number, direction: number, drop: boolean): boolean;
  stop(id: number): boolean;
  activity(id: number): number;
  writing(id: number, direction: number): boolean;
  relayCount(group: object): number;
  // The listeners (see tcp-native-listener.ts).
  acceptWith(onAccepted: (owner: object, accepted: unknown[], error: string) => void): void;
  listen(ip: string, port: number, flags: number, backlog: number, owner: object, wantsPeers: boolean): number;
  unlisten(id: number): boolean;
  listenerAddress(id: number): [string, number] | undefined;
  wantPeers(id: number, yes: boolean): void;
  closeClient(fd: number, reset: boolean): void;
  address(fd: number, peer: boolean): [string, number] | undefined;
  /** See freed-memory.ts; not required, so an addon built before it still serves. */
  trimHeap?(): boolean;
}

export type { Binding as TcpNativeBinding };

/** The directions of a relay, as the addon numbers them. */
export const CLIENT_TO_UPSTREAM = 0;
export const UPSTREAM_TO_CLIENT = 1;
/** What a relay's end asks of its descriptors (the flags of onFinished). */
export const RESET_CLIENT = 1;
export const RESET_UPSTREAM = 2;

const ADDON = new NativeAddon<Binding>('kup_tcp.node', 'KUP_TCP_NATIVE', [
  'createGroup',
  'relay',
  'dial',
  'attach',
  'end',
  'stop',
  'activity',
  'writing',
  'relayCount',
  'acceptWith',
  'listen',
  'unlisten',
  'listenerAddress',
  'wantPeers',
  'closeClient',
  'address',
]);

/** The addon's functions, or null where this process has none. */
export function nativeBinding(): Binding | null {
  return ADDON.binding;
}

/** Whether TCP connections can be relayed on the native data path in this process. */
export function tcpNativeAvailable(): boolean {
  return nativeBinding() !== null;
}

/** Why the native data path is not used ('' when it is). */
export function tcpNativeUnavailableReason(): string {
  return ADDON.unavailableReason;
}

/** What a dial's end is told to: '' when it connected (attach it, or stop it), else the errno's name. */
export interface DialOwner {
  dialed(code: string): void;
}

/**
 * The relays of one service port. Byte totals are kept in memory the addon writes, so reading them
 * costs no call: bytesIn / bytesOut count what was read from clients / from endpoints.
 */
export class TcpRelayGroup<Owner extends object> {
  readonly #binding: Binding;
  readonly #group: object;
  readonly #totals = new Float64Array(2);

  /**
   * A group on the native data path; undefined when this process has none (see
   * tcpNativeUnavailableReason). onFinished(owner, flags) is called once per relay that ends on its
   * own (not after stop()): its client descriptor is to be closed then (reset when flags say so),
   * and its upstream too unless the addon dialed it (then it closed it). A dial's owner is told
   * owner.dialed(code) once, unless stopped.
   */
  static create<Owner extends object>(onFinished: (owner: Owner, flags: number) => void): TcpRelayGroup<Owner> | undefined {
    const b = nativeBinding();
    return b === null ? undefined : new TcpRelayGroup(b, onFinished);
  }

  private constructor(b: Binding, onFinished: (owner: Owner, flags: number) => void) {
    this.#binding = b;
    // One call for every relay and dial of the group that ended in a wakeup of the loop, not one each.
    this.#group = b.createGroup((ended) => {
      for (let i = 0; i < ended.length; i += 2) {
        const what = ended[i + 1];
        if (typeof what === 'string') (ended[i] as DialOwner).dialed(what);
        else onFinished(ended[i] as Owner, what as number);
      }
    }, this.#totals);
  }

  get bytesIn(): number {
    return this.#totals[0] as number;
  }

  get bytesOut(): number {
    return this.#totals[1] as number;
  }

  /** Relays still running. */
  get size(): number {
    return this.#binding.relayCount(this.#group);
  }

  /**
   * Starts relaying two connected descriptors (their handles must not be read by libuv any more);
   * header goes to the upstream before the client's first byte. Returns the relay's id; throws an
   * Error with the errno's code (ENOMEM...) when the relay cannot start (nothing started then).
   */
  relay(clientFd: number, upstreamFd: number, owner: Owner, header?: Buffer): number {
    return this.#binding.relay(this.#group, clientFd, upstreamFd, owner, header);
  }

  /**
   * Connects a socket of the addon's own to ip:port (TCP_NODELAY, non-blocking); owner.dialed(code)
   * says how it ended. Returns the dial's id (stop(id) cancels it and closes the socket); throws an
   * Error with the errno's code (EMFILE, ECONNREFUSED...) when the connect cannot even start.
   */
  dial(ip: string, port: number, owner: DialOwner): number {
    return this.#binding.dial(this.#group, ip, port, owner);
  }

  /**
   * A connected dial relays with the client from now on (header first to the upstream), and tells
   * owner of its end; the addon closes the upstream then, and the client too when ownsClient (one
   * it accepted, see tcp-native-listener.ts). Throws an Error with the errno's code when it cannot
   * start (the dial is unchanged: stop(id) closes it; the client is still the caller's).
   */
  attach(id: number, clientFd: number, owner: Owner, header?: Buffer, ownsClient = false): void {
    this.#binding.attach(id, clientFd, owner, header, ownsClient);
  }

  /** A FIN to the direction's destination after what is pending for it; drop: what its source sends later is dropped. */
  end(id: number, direction: number, drop: boolean): void {
    this.#binding.end(id, direction, drop);
  }

  /**
   * Stops the relay (or dial) without a call back; the caller closes the client next (an upstream
   * the addon dialed is closed by it, reset if it was relaying). False when it was over.
   */
  stop(id: number): boolean {
    return this.#binding.stop(id);
  }

  /** A counter bumped by every byte moved either way; -1 once the relay is over. */
  activity(id: number): number {
    return this.#binding.activity(id);
  }

  /** Whether bytes wait for the direction's destination to take them. */
  writing(id: number, direction: number): boolean {
    return this.#binding.writing(id, direction);
  }
}
