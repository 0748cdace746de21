import { CLIENT_TO_UPSTREAM, RESET_CLIENT, RESET_UPSTREAM, TcpRelayGroup, UPSTREAM_TO_CLIENT } from '../../internals/tcp-native.js';
import type { TcpHandle } from '../../internals/tcp-handles.js';
import type { EndpointStats, ProxyStats } from '../proxy-stats.js';
import type { IdleTracked } from './idle-sweep.js';
import { resetHandle } from './handle-forwarder.js';
import type { HandleForwarder } from './handle-forwarder.js';
import { NativeClient } from './native-client.js';
import { NativeDial } from './native-connector.js';

/** The descriptor of a libuv stream handle (Node's handles have it on Linux) or a native client; -1 where there is none. */
function descriptorOf(h: TcpHandle | NativeClient): number {
  const fd = (h as unknown as { fd?: unknown }).fd;
  return typeof fd === 'number' ? fd : -1;
}

/**
 * One established connection relayed by the native TCP data path (lib/internals/tcp-native.ts):
 * the addon moves the bytes with HandleForwarder's rules (half-close both ways, one buffer of
 * backpressure, a RST to one side for an error on the other); this keeps what JavaScript owns: the
 * two handles (idle while the addon relays their descriptors, closed when it is over), the active
 * counts, the idle timeout and the max connection age. A client the addon accepted (NativeClient)
 * and an upstream it dialed (NativeDial) have no handle: the addon closes them.
 *
 * The idle sweep learns of traffic without a call per read: it reads the relay's activity counter
 * once per sweep (idleTicks).
 */
export class NativeForwarder implements IdleTracked {
  readonly client: TcpHandle | NativeClient;
  /** A libuv handle JavaScript connected, or the addon's own socket (NativeDial: closed by the addon). */
  readonly upstream: TcpHandle | NativeDial;
  readonly stats: ProxyStats;
  readonly endpointStats: EndpointStats;
  readonly #relays: TcpRelayGroup<NativeForwarder>;
  readonly #onClosed: (forwarder: NativeForwarder) => void;
  #id = -1;
  #ticks = 0;
  #activity = 0;
  #closed = false;
  idleClosing = false;
  startedAt = 0;
  ageJitter = -1;
  agedAt = 0;

  constructor(
    relays: TcpRelayGroup<NativeForwarder>,
    client: TcpHandle | NativeClient,
    upstream: TcpHandle | NativeDial,
    stats: ProxyStats,
    endpointStats: EndpointStats,
    onClosed: (forwarder: NativeForwarder) => void,
  ) {
    this.#relays = relays;
    this.client = client;
    this.upstream = upstream;
    this.stats = stats;
    this.endpointStats = endpointStats;
    this.#onClosed = onClosed;
  }

  /**
   * Hands both descriptors to the addon; header (PROXY protocol) goes to the upstream before the
   * client's first byte. False, nothing changed but the upstream's reads stopped, when the relay
   * cannot start (no descriptor on this platform, or the kernel refused the registration): the
   * connection then stays with HandleForwarder, which starts reading again.
   */
  start(header?: Buffer): boolean {
    const client = this.client;
    const clientFd = descriptorOf(client);
    const upstream = this.upstream;
    if (clientFd < 0) return false;
    try {
      if (upstream instanceof NativeDial) {
        const owned = client instanceof NativeClient;
        this.#relays.attach(upstream.id, clientFd, this, header, owned);
        if (owned) client.handedOver();
        this.#id = upstream.id;
      } else if (client instanceof NativeClient) {
        // Not made: a native client's upstream is always dialed by the addon.
        return false;
      } else {
        const upstreamFd = descriptorOf(upstream);
        if (upstreamFd < 0) return false;
        // The upstream reads from its connect (see TcpHandles.connect); libuv lets go of the
        // descriptor here. The client was never read.
        upstream.readStop();
        upstream.setNoDelay(true);
        this.#id = this.#relays.relay(clientFd, upstreamFd, this, header);
      }
    } catch {
      return false;
    }
    this.startedAt = performance.now();
    this.stats.active++;
    this.endpointStats.active++;
    return true;
  }

  /** Sweeps since the last byte either way: zeroed whenever the relay's activity counter moved. */
  get idleTicks(): number {
    const a = this.#relays.activity(this.#id);
    if (a !== this.#activity) {
      this.#activity = a;
      this.#ticks = 0;
    }
    return this.#ticks;
  }

  set idleTicks(ticks: number) {
    this.#ticks = ticks;
  }

  /** The idle timeout: a FIN to both peers first; at the next sweep, whatever is still open is reset. */
  closeIdle(): void {
    if (this.idleClosing) {
      this.destroy();
      return;
    }
    this.idleClosing = true;
    this.stats.tcpIdleTimeouts++;
    this.#relays.end(this.#id, UPSTREAM_TO_CLIENT, false);
    this.#relays.end(this.#id, CLIENT_TO_UPSTREAM, false);
  }

  /** The max connection age: a FIN to the endpoint; client bytes are dropped from now on. See TcpForwarder.closeAged(). */
  closeAged(now: number): void {
    if (this.agedAt !== 0) return;
    this.agedAt = now;
    this.stats.maxAgeCloses++;
    this.#relays.end(this.#id, CLIENT_TO_UPSTREAM, true);
  }

  /** The age's grace is over: a FIN to the client too, once the endpoint is quiet and the client took what was queued for it. */
  closeAfterGrace(): void {
    if (this.idleClosing || this.idleTicks < 2 || this.#relays.writing(this.#id, UPSTREAM_TO_CLIENT)) return;
    this.idleClosing = true;
    this.#relays.end(this.#id, UPSTREAM_TO_CLIENT, false);
  }

  /** Aborts the connection: both peers get a RST. */
  destroy(): void {
    if (this.#closed) return;
    this.#relays.stop(this.#id);
    this.finished(RESET_CLIENT | RESET_UPSTREAM);
  }

  /** The relay is over (the addon's call, or destroy()): both handles are closed, those flags name reset. */
  finished(flags: number): void {
    if (this.#closed) return;
    this.#closed = true;
    const client = this.client;
    // A client the addon accepted was closed (or reset) by it.
    if (!(client instanceof NativeClient)) {
      if ((flags & RESET_CLIENT) !== 0) resetHandle(client);
      else client.close();
    }
    const upstream = this.upstream;
    // The addon closed (or reset) a socket it dialed itself.
    if (!(upstream instanceof NativeDial)) {
      if ((flags & RESET_UPSTREAM) !== 0) resetHandle(upstream);
      else upstream.close();
    }
    this.stats.active--;
    this.endpointStats.active--;
    this.#onClosed(this);
  }
}

/**
 * Starts forwarding a dialed connection of handles (or of a native client and the addon's
 * upstream): relayed natively where the port has relays and the relay starts, else by `fallback`
 * (HandleForwarder of a handle client: the addon is missing, or the kernel refused the relay).
 * Returns the forwarder in charge; undefined when the relay cannot start and there is no fallback
 * (an upstream the addon dialed, or a native client): the upstream is closed then, and the caller
 * resets the client.
 */
export function forwardHandles(
  relays: TcpRelayGroup<NativeForwarder> | undefined,
  client: TcpHandle | NativeClient,
  fallback: HandleForwarder | undefined,
  upstream: TcpHandle | NativeDial,
  stats: ProxyStats,
  endpointStats: EndpointStats,
  header: Buffer | undefined,
  onClosed: (forwarder: NativeForwarder) => void,
): HandleForwarder | NativeForwarder | undefined {
  const group = upstream instanceof NativeDial ? upstream.relays : relays;
  if (group !== undefined) {
    const native = new NativeForwarder(group, client, upstream, stats, endpointStats, onClosed);
    if (native.start(header)) return native;
  }
  if (fallback === undefined || upstream instanceof NativeDial) {
    upstream.close();
    return undefined;
  }
  fallback.start(upstream, endpointStats, header);
  return fallback;
}

/**
 * The relay group of one service port, undefined where this process has no native data path.
 * stats.bytesIn and bytesOut then include the group's totals, exact whenever read (the addon writes
 * them into memory shared with JavaScript); what JavaScript adds (connections that stayed on the
 * handle path) stays its own part.
 */
export function relayGroupFor(stats: ProxyStats): TcpRelayGroup<NativeForwarder> | undefined {
  const group = TcpRelayGroup.create<NativeForwarder>((forwarder, flags) => forwarder.finished(flags));
  if (group === undefined) return undefined;
  let ownIn = stats.bytesIn;
  let ownOut = stats.bytesOut;
  Object.defineProperty(stats, 'bytesIn', {
    enumerable: true,
    configurable: true,
    get: () => ownIn + group.bytesIn,
    set: (v: number) => (ownIn = v - group.bytesIn),
  });
  Object.defineProperty(stats, 'bytesOut', {
    enumerable: true,
    configurable: true,
    get: () => ownOut + group.bytesOut,
    set: (v: number) => (ownOut = v - group.bytesOut),
  });
  return group;
}
