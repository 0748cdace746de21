import net from 'node:net';
import type { LoadBalancer } from '../../balancer/load-balancer.js';
import { ClosedError, InvalidConfigError } from '../../errors.js';
import { formatHostPort } from '../../net/host-port.js';
import { logger } from '../../log.js';
import type { Logger } from '../../log.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import type { ListenAddress, ProxySocket } from '../proxy-socket.js';
import { ProxyStats } from '../proxy-stats.js';
import { Dialer, dialTimeouts } from './dialer.js';
import type { TcpConnectionPolicy } from './connection-policy.js';
import { TCP_HANDLES } from '../../internals/tcp-handles.js';
import { PortListeners } from './tcp-listeners.js';
import type { AcceptOwner } from '../../internals/tcp-native-listener.js';
import type { TcpHandle } from '../../internals/tcp-handles.js';
import { HANDLE_CONNECTOR } from './handle-connector.js';
import { nativeConnector } from './native-connector.js';
import type { NativeDial } from './native-connector.js';
import { tcpNativeAvailable } from '../../internals/tcp-native.js';
import { relayGroupFor } from './native-forwarder.js';
import { IdleSweep } from './idle-sweep.js';
import { TcpConnections } from './tcp-connections.js';
import type { TcpDataPath, TcpProxySocketOptions } from './tcp-proxy-socket-options.js';
import { connectionOptionsOf } from './connection-options.js';
import type { ConnectionOptions } from './connection-options.js';

export type { TcpDataPath, TcpProxySocketOptions } from './tcp-proxy-socket-options.js';

function ignore(): void {}

const STARTED = Promise.resolve();

/**
 * The listen addresses, copied and frozen. Not with map(): once optimised, V8's inlined map()
 * makes holey arrays where the builtin makes packed ones, and freezing the first holey array of
 * the process throws away the optimised code of everything that iterates holey arrays (the
 * Services and slices copied from the manifest thread are such arrays): in a first sync with
 * 10,000 ports, that cost a second optimising compile of the agent's sync functions.
 */
function frozenCopy(listen: readonly ListenAddress[]): readonly ListenAddress[] {
  // The one address most ports have as a literal: an array grown by push() from [] keeps room for
  // 17 elements, 150 bytes a port.
  if (listen.length === 1) return Object.freeze([copyOf(listen[0]!)]);
  const out: ListenAddress[] = [];
  for (const a of listen) out.push(copyOf(a));
  return Object.freeze(out);
}

function copyOf(a: ListenAddress): ListenAddress {
  return a.ipv6Only === true ? { host: a.host, port: a.port, ipv6Only: true } : { host: a.host, port: a.port };
}

/** The policy of a Service without annotations: one object for all such ports, not a copy each. */
const NO_POLICY: TcpConnectionPolicy = Object.freeze({});

/**
 * The TCP side of one service port: accepts client connections on every listen address and
 * forwards each to an endpoint chosen by the balancer.
 *
 * Each client is accepted paused (pauseOnConnect), so nothing it sends is read before its
 * upstream exists; the dial runs asynchronously and never holds up other clients.
 */
export class TcpProxySocket implements ProxySocket, AcceptOwner {
  readonly spn: ProxySocketKey;
  readonly protocol = 'TCP' as const;
  readonly stats: ProxyStats;

  readonly #listen: readonly ListenAddress[];
  readonly #handles: readonly object[] | undefined;
  readonly #reusePort: boolean;
  readonly #balancer: LoadBalancer;
  readonly #log: Logger;
  /** Whichever listeners start() opened; closed by close(). */
  readonly #bound = new PortListeners();
  readonly #nativeAccept: boolean;
  readonly #onHandles: boolean;
  readonly #dataPath: TcpDataPath;
  #starting: Promise<void> | undefined;
  #opening = false;
  #closing: Promise<void> | undefined;
  #destroyed = false;
  #policy: TcpConnectionPolicy = NO_POLICY;
  #idleTimeoutMs: number;
  // What the connections need (their table, two dialers, the idle sweep) is made on the first
  // connection: ten thousand ports that never see one then hold none of it, and none of them is
  // on the sweep clock.
  readonly #connectionOptions: ConnectionOptions;
  #connections: TcpConnections | undefined;
  #idle: IdleSweep | undefined;

  constructor(options: TcpProxySocketOptions) {
    if (!Array.isArray(options.listen) || options.listen.length === 0) {
      throw new InvalidConfigError([`${options.spn}: a TCP proxy socket needs at least one listen address`]);
    }
    this.spn = options.spn;
    this.#listen = frozenCopy(options.listen);
    if (options.handles !== undefined && options.handles.length !== options.listen.length) {
      throw new InvalidConfigError([`${options.spn}: ${options.handles.length} listening handles for ${options.listen.length} listen addresses`]);
    }
    this.#handles = options.handles;
    this.#reusePort = options.reusePort === true;
    this.#balancer = options.balancer;
    this.stats = new ProxyStats({ rotation: options.balancer, spn: options.spn });
    // lc, sed and nq read the per-endpoint active counts this socket keeps anyway.
    options.balancer.trackConnections?.(options.spn, this.stats);
    this.#log = options.log ?? logger('tcp');
    const idleTimeoutMs = options.idleTimeoutMs ?? 0;
    if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 0) {
      throw new InvalidConfigError([`${options.spn}: idleTimeoutMs must be a non-negative integer (ms), got ${String(idleTimeoutMs)}`]);
    }
    this.#idleTimeoutMs = idleTimeoutMs;
    if (options.policy !== undefined) this.setConnectionPolicy(options.policy);
    this.#onHandles = TCP_HANDLES !== undefined && options.dataPath !== 'net' && options.connector === undefined;
    this.#dataPath = !this.#onHandles ? 'net' : options.dataPath !== 'handles' && tcpNativeAvailable() ? 'native' : 'handles';
    this.#nativeAccept = options.nativeAccept !== false;
    // Checked now: a bad list is a configuration error at start, not at the first connection.
    this.#connectionOptions = connectionOptionsOf(options, dialTimeouts(options.dialTimeoutsMs ?? options.connector?.dialTimeoutsMs));
  }

  /** The connections of this port, made on first use (see #connectionOptions). */
  #conns(): TcpConnections {
    if (this.#connections !== undefined) return this.#connections;
    const o = this.#connectionOptions;
    const spn = this.spn;
    const balancer = this.#balancer;
    const log = this.#log;
    const dialer = new Dialer({ spn, balancer, backoff: o.backoff, stats: this.stats, timeoutsMs: o.dialTimeoutsMs, log, connector: o.connector });
    const idle = new IdleSweep(() => connections.forwarders(), o.random);
    const relays = this.#dataPath === 'native' ? relayGroupFor(this.stats) : undefined;
    const connections = new TcpConnections({
      spn,
      stats: this.stats,
      balancer,
      log,
      budget: o.budget,
      dialer,
      relays,
      handleDialer: this.#onHandles
        ? new Dialer<TcpHandle | NativeDial>({
            spn,
            balancer,
            backoff: o.backoff,
            stats: this.stats,
            timeoutsMs: o.dialTimeoutsMs,
            log,
            connector: relays !== undefined ? nativeConnector(relays) : HANDLE_CONNECTOR,
          })
        : undefined,
      policy: () => this.#policy,
      // The sweep goes on after close() while established connections finish.
      onEmpty: () => {
        if (this.#closing !== undefined) idle.stop();
      },
    });
    this.#connections = connections;
    this.#idle = idle;
    if (this.#destroyed) {
      // A connection accepted after destroy() is closed at once, as by the table destroy() reset.
      connections.destroy();
      return connections;
    }
    // close() with no connection stops the sweep for good; made after it, the sweep is not started.
    if (this.#closing !== undefined) return connections;
    idle.set(this.#idleTimeoutMs);
    idle.setMaxAge(this.#policy.maxConnectionAgeMs ?? 0);
    return connections;
  }

  /** Whether connections are forwarded on libuv handles (see dataPath). */
  get forwardsOnHandles(): boolean {
    return this.#onHandles;
  }

  /** Whether the native addon accepts this port's clients (see TcpProxySocketOptions.nativeAccept). */
  get acceptsNatively(): boolean {
    return this.#bound.native;
  }

  /** The data path of this port's established connections (see TcpProxySocketOptions.dataPath). */
  get dataPath(): TcpDataPath {
    return this.#dataPath;
  }

  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError(`TCP proxy socket ${this.spn}`));
    if (this.#starting !== undefined) return this.#starting;
    // Without a net.Server the listeners are open when this returns: no promise of its own is
    // kept for each of 10,000 ports. A failed start opened nothing, so it may be retried (the
    // port may be free by then).
    try {
      if (this.#listenWithoutServers()) return (this.#starting = STARTED);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.#starting = this.#openServers().catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  async #openServers(): Promise<void> {
    this.#opening = true;
    const failure = await this.#bound.listenServers(this.#listen, this.#handles, this.#reusePort, (client) => this.#conns().onConnection(client));
    this.#opening = false;
    if (failure !== undefined || this.#closing !== undefined) {
      this.#bound.closeServers();
      throw failure ?? new ClosedError(`TCP proxy socket ${this.spn}`);
    }
    const onHandle = (error: string | undefined, client: TcpHandle | undefined): void => this.#conns().onHandle(error, client);
    this.#bound.takeAccepts((err) => this.#conns().onAcceptError(err), this.#onHandles ? onHandle : undefined);
    this.#logOpened();
  }

  /**
   * Binds and listens without a net.Server where this socket binds IP literals itself (no handles
   * from another process). With the native addon (the 'native' data path, unless nativeAccept is
   * false), the addon accepts the clients too: no handle and no TCPWrap for the listener or the
   * clients, one call into JavaScript per batch of clients accepted in a wakeup. Else on a libuv
   * handle, where this Node allows it and the connections go to handles anyway (not with
   * SO_REUSEPORT): a net.Server per port is about 1 KB of heap and 3 KB outside it, and its listen()
   * a DNS lookup and a tick, for nothing the handle path uses. False (nothing done) where a
   * net.Server is needed. Fails as net.Server.listen would, all or none.
   */
  #listenWithoutServers(): boolean {
    if (this.#handles !== undefined || !this.#listen.every((a) => net.isIP(a.host) !== 0)) return false;
    const natively = this.#dataPath === 'native' && this.#nativeAccept && this.#bound.listenNatively(this.#listen, this.#reusePort, this);
    const listen = TCP_HANDLES?.listen;
    if (!natively) {
      if (listen === undefined || !this.#onHandles || this.#reusePort) return false;
      this.#bound.listenOnHandles(listen, this.#listen, (error, client) => this.#conns().onHandle(error, client));
    }
    this.#logOpened();
    return true;
  }

  /** A native listener's batch of clients (AcceptOwner). */
  accepted(accepted: unknown[], error: string): void {
    // The balancer or the policy may have changed: the next batches come with (or without) addresses.
    this.#bound.wantPeers(this.#conns().onAccepted(accepted, this.#bound.wantsPeers, error));
  }

  #logOpened(): void {
    // addresses() asks the kernel (getsockname): not worth it for a line that is not logged.
    if (this.#log.isInfoEnabled()) {
      this.#log.info('opened proxy socket', { service: this.spn, protocol: 'TCP', addresses: this.addresses().map((a) => formatHostPort(a.host, a.port)), dataPath: this.#dataPath });
    }
  }

  addresses(): ListenAddress[] {
    return this.#bound.addresses();
  }

  /** The listeners' handles, for another process to accept on as well (see PortListeners.listeningHandles). */
  listeningHandles(): object[] {
    return this.#bound.listeningHandles();
  }

  /**
   * Changes the idle timeout (a Service's annotation changed): applies to established connections
   * too, counting their silence from before the change. 0 = never.
   */
  setIdleTimeout(timeoutMs: number): void {
    if (this.#destroyed || !Number.isSafeInteger(timeoutMs) || timeoutMs < 0) return;
    this.#idleTimeoutMs = timeoutMs;
    this.#idle?.set(timeoutMs);
  }

  /**
   * Changes what the Service asks of its connections (its annotations changed). The PROXY
   * protocol setting applies to connections dialed from now on; the max connection age to
   * established connections too, counting from their start.
   */
  setConnectionPolicy(policy: TcpConnectionPolicy): void {
    if (this.#destroyed) return;
    const age = policy.maxConnectionAgeMs ?? 0;
    if (!Number.isSafeInteger(age) || age < 0) return;
    // A frozen policy cannot change under this socket: kept as it is, not copied for each port.
    this.#policy = Object.isFrozen(policy) ? policy : { ...policy };
    this.#idle?.setMaxAge(age);
  }

  /** The connection policy in force. */
  connectionPolicy(): TcpConnectionPolicy {
    return this.#policy;
  }

  /** The idle timeout in force (ms; 0 = never). */
  idleTimeoutMs(): number {
    return this.#idleTimeoutMs;
  }

  /** Client connections not yet finished, dialing or established. */
  connectionCount(): number {
    return this.#connections?.size ?? 0;
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#opening) {
      // Listening is under way: start() sees #closing when it completes and closes what it opened.
      this.#closing = (this.#starting as Promise<void>).then(ignore, ignore);
      return this.#closing;
    }
    // Established connections outlive close() on purpose; the port is released by now.
    const closed = this.#bound.close();
    // The sweep goes on while established connections finish (see TcpConnections.#forget).
    if (this.connectionCount() === 0) this.#idle?.stop();
    if (closed) this.#log.info('closed proxy socket', { service: this.spn, protocol: 'TCP', connections: this.connectionCount() });
    this.#closing = Promise.resolve();
    return this.#closing;
  }

  destroy(): void {
    void this.close();
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#idle?.stop();
    this.#connections?.destroy();
  }
}
