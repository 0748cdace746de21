import net from 'node:net';
import type { LoadBalancer } from '../../balancer/load-balancer.js';
import { formatHostPort } from '../../net/host-port.js';
import type { TcpHandle } from '../../internals/tcp-handles.js';
import type { TcpRelayGroup } from '../../internals/tcp-native.js';
import type { Logger } from '../../log.js';
import type { ProxyProtocolVersion } from '../../model/proxy-protocol-annotation.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import type { DescriptorBudget } from '../descriptor-budget.js';
import type { ProxyStats } from '../proxy-stats.js';
import { acceptException, clientIPOf, clientPeer, clientProxyHeader, resetClient } from './accepted-client.js';
import type { AcceptedClient } from './accepted-client.js';
import { ConnectionFailures } from './connection-failures.js';
import type { TcpConnectionPolicy } from './connection-policy.js';
import type { Dialer, DialOutcome, PendingDial } from './dialer.js';
import { HandleForwarder } from './handle-forwarder.js';
import { NativeClient } from './native-client.js';
import type { NativeDial } from './native-connector.js';
import { forwardHandles, NativeForwarder } from './native-forwarder.js';
import { reset, TcpForwarder } from './tcp-forwarder.js';

/** Descriptors a proxied connection holds: the client's and the upstream's. */
const DESCRIPTORS_PER_CONNECTION = 2;

function ignore(): void {}

type Client = AcceptedClient;
type Forwarder = TcpForwarder | HandleForwarder | NativeForwarder;
type Connection = PendingDial | Forwarder;

function isForwarder(conn: Connection): conn is Forwarder {
  return conn instanceof HandleForwarder || conn instanceof NativeForwarder || conn instanceof TcpForwarder;
}

export interface TcpConnectionsOptions {
  readonly spn: ProxySocketKey;
  readonly stats: ProxyStats;
  readonly balancer: LoadBalancer;
  readonly log: Logger;
  readonly budget: DescriptorBudget | undefined;
  /** Dials for net.Socket clients. */
  readonly dialer: Dialer;
  /**
   * Dials for clients accepted as handles (onHandle), as handles or (ports the addon relays) by the
   * addon; undefined when the port forwards on net only.
   */
  readonly handleDialer: Dialer<TcpHandle | NativeDial> | undefined;
  /** Relays established handle connections natively (NativeForwarder); undefined: HandleForwarder does. */
  readonly relays: TcpRelayGroup<NativeForwarder> | undefined;
  /** The Service's connection policy in force. */
  readonly policy: () => TcpConnectionPolicy;
  /** Called whenever the last connection has finished. */
  readonly onEmpty: () => void;
}

/**
 * The client connections of one TCP service port, from accept to close: each is checked (endpoints,
 * descriptor budget), dialed, and handed to its forwarder (TcpForwarder for net.Sockets,
 * NativeForwarder or HandleForwarder for libuv handles); a dial that fails resets the client, counted and logged with
 * a throttle.
 */
export class TcpConnections {
  readonly spn: ProxySocketKey;
  readonly stats: ProxyStats;
  readonly #balancer: LoadBalancer;
  readonly #log: Logger;
  readonly #budget: DescriptorBudget | undefined;
  readonly #dialer: Dialer;
  readonly #handleDialer: Dialer<TcpHandle | NativeDial> | undefined;
  readonly #relays: TcpRelayGroup<NativeForwarder> | undefined;
  readonly #policy: () => TcpConnectionPolicy;
  readonly #onEmpty: () => void;
  // What follows is made on first use: a process may have ten thousand ports that never see a
  // connection, and each would otherwise carry its own empty map, throttles and closure from start.
  /** Every client connection not yet finished: dialing (PendingDial) or forwarding. */
  #connections: Map<Client, Connection> | undefined;
  #destroyed = false;
  #failed: ConnectionFailures | undefined;
  #onForwarderClosed: ((forwarder: Forwarder) => void) | undefined;

  constructor(options: TcpConnectionsOptions) {
    this.spn = options.spn;
    this.stats = options.stats;
    this.#balancer = options.balancer;
    this.#log = options.log;
    this.#budget = options.budget;
    this.#dialer = options.dialer;
    this.#handleDialer = options.handleDialer;
    this.#relays = options.relays;
    this.#policy = options.policy;
    this.#onEmpty = options.onEmpty;
  }

  /** Connections not yet finished, dialing or established. */
  get size(): number {
    return this.#connections?.size ?? 0;
  }

  /** The established connections (for the idle sweep). */
  *forwarders(): Generator<Forwarder> {
    if (this.#connections === undefined) return;
    for (const conn of this.#connections.values()) if (isForwarder(conn) && conn.upstream !== undefined) yield conn;
  }

  /** Resets every connection, dialing or established; connections accepted from now on are closed. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#connections === undefined) return;
    this.#budget?.release(DESCRIPTORS_PER_CONNECTION * this.#connections.size);
    for (const [client, conn] of this.#connections) {
      if (isForwarder(conn)) {
        conn.destroy();
      } else {
        conn.cancel();
        resetClient(client);
      }
    }
    this.#connections.clear();
  }

  /** A net.Server's 'connection' listener (accepted paused). */
  readonly onConnection = (client: net.Socket): void => {
    // Until the forwarder takes over, a reset client must not crash the process.
    client.on('error', ignore);
    if (!this.#admit(client)) return;
    const ip = this.#readsClientIP() ? clientIPOf(client) : '';
    // Made before dialing: it is the upstream socket's onread.
    const forwarder = new TcpForwarder(client, this.stats, this.#forwarderClosed());
    this.#live().set(
      client,
      this.#dialer.dial(ip, (outcome) => this.#dialed(client, ip, forwarder, outcome), forwarder),
    );
  };

  /** A connection accepted as a libuv handle (see dataPath): as #onConnection, on the handle path. */
  readonly onHandle = (error: string | undefined, client: TcpHandle | undefined): void => {
    if (error !== undefined || client === undefined) {
      this.#failures().acceptError(acceptException(error));
      return;
    }
    if (this.#admit(client)) this.#dialHandle(client, new HandleForwarder(client, this.stats, this.#forwarderClosed()));
  };

  /**
   * Clients a native listener accepted in one wakeup (see AcceptOwner in
   * lib/internals/tcp-native-listener.ts; with their addresses when peers): each is dialed by the
   * addon and relayed by it, with no handle for either side. Returns whether the next batches
   * should come with the clients' addresses: the balancer, the debug lines or the PROXY header use them.
   */
  onAccepted(accepted: unknown[], peers: boolean, error: string): boolean {
    for (let i = 0; i < accepted.length; i += peers ? 3 : 1) {
      const client = NativeClient.accepted(accepted, i, peers);
      if (this.#admit(client)) this.#dialHandle(client, undefined);
    }
    if (error !== '') this.#failures().acceptError(acceptException(error));
    return this.#readsClientIP() || this.#policy().proxyProtocol !== undefined;
  }

  /** Dials for a handle client (its HandleForwarder made) or a native one (undefined). */
  #dialHandle(client: TcpHandle | NativeClient, forwarder: HandleForwarder | undefined): void {
    const ip = this.#readsClientIP() ? clientIPOf(client) : '';
    const dialer = this.#handleDialer as Dialer<TcpHandle | NativeDial>;
    this.#live().set(
      client,
      dialer.dial(ip, (outcome) => this.#handleDialed(client, ip, forwarder, outcome)),
    );
  }

  /**
   * Counts a client just accepted, and turns it away (false) when the port is destroyed (closed),
   * has no endpoint, or the descriptor budget is spent (a RST, counted and logged with a throttle).
   */
  #admit(client: Client): boolean {
    this.stats.total++;
    if (this.#destroyed) {
      if (client instanceof net.Socket) client.destroy();
      else client.close();
      return false;
    }
    if (this.#balancer.endpoints(this.spn).length === 0) {
      this.#failures().rejectNoEndpoint(client, () => resetClient(client));
      return false;
    }
    if (this.#budget !== undefined && !this.#budget.tryAcquire(DESCRIPTORS_PER_CONNECTION)) {
      // Refused before the process hits EMFILE somewhere it cannot handle it (or the health and
      // metrics servers and the API source can no longer open a socket). A RST: the client
      // learns at once, and may retry elsewhere.
      this.stats.localResourceErrors++;
      resetClient(client);
      this.#failures().localResource('refused connection: descriptor budget reached', 'EMFILE', { budget: this.#budget.size });
      return false;
    }
    return true;
  }

  /** A dial for a handle client (its HandleForwarder made) or a native one (undefined) ended. */
  #handleDialed(client: TcpHandle | NativeClient, ip: string, forwarder: HandleForwarder | undefined, outcome: DialOutcome<TcpHandle | NativeDial>): void {
    if (outcome.kind !== 'connected') {
      this.#forget(client);
      this.#failures().dialFailed(outcome, ip, client, () => resetClient(client));
      return;
    }
    const upstream = outcome.socket;
    if (forwarder?.clientClosed === true) {
      upstream.close();
      this.#forget(client);
      return;
    }
    let header: Buffer | undefined;
    const version = this.#policy().proxyProtocol;
    if (version !== undefined) {
      header = this.#proxyHeader(client, version);
      if (header === undefined) {
        upstream.close();
        this.#forget(client);
        resetClient(client);
        return;
      }
    }
    // In the table first: a start that fails at once closes the connection, which takes it out.
    const live = this.#live();
    if (forwarder !== undefined) live.set(client, forwarder);
    const started = forwardHandles(this.#relays, client, forwarder, upstream, this.stats, outcome.endpointStats, header, this.#forwarderClosed());
    if (started === undefined) {
      this.#forget(client);
      resetClient(client);
      return;
    }
    if (started !== forwarder) live.set(client, started);
    if (this.#log.isDebugEnabled()) {
      this.#log.debug('proxying connection', { service: this.spn, client: formatHostPort(ip, clientPeer(client)?.port ?? 0), endpoint: outcome.endpoint.key, attempts: outcome.attempts });
    }
  }

  #dialed(client: net.Socket, ip: string, forwarder: TcpForwarder, outcome: DialOutcome): void {
    if (outcome.kind === 'connected') {
      const upstream = outcome.socket;
      if (client.destroyed) {
        // Only we destroy a paused client, so this is destroy() racing the dial's last event.
        upstream.destroy();
        this.#forget(client);
        return;
      }
      const version = this.#policy().proxyProtocol;
      if (version !== undefined) {
        // Before start(): the client is still paused, so the header precedes its first byte.
        const header = this.#proxyHeader(client, version);
        if (header === undefined) {
          // The client is gone already (its address can no longer be read), or the header cannot be made.
          upstream.destroy();
          this.#forget(client);
          reset(client);
          return;
        }
        upstream.write(header);
      }
      forwarder.start(upstream, outcome.endpointStats);
      this.#live().set(client, forwarder);
      if (this.#log.isDebugEnabled()) {
        this.#log.debug('proxying connection', { service: this.spn, client: formatHostPort(ip, client.remotePort ?? 0), endpoint: outcome.endpoint.key, attempts: outcome.attempts });
      }
      return;
    }
    this.#forget(client);
    this.#failures().dialFailed(outcome, ip, client, () => reset(client));
  }

  /**
   * Whether the client's address is read when it is accepted: the balancer picks by it, or debug
   * lines name it. Otherwise it costs a system call (getpeername) per connection for nothing, and
   * is read only where a line about a failed connection names the client.
   */
  #readsClientIP(): boolean {
    return this.#balancer.needsClientIP?.(this.spn) !== false || this.#log.isDebugEnabled();
  }

  /** The client's PROXY protocol header; undefined when the client is gone or its address cannot be encoded. */
  #proxyHeader(client: Client, version: ProxyProtocolVersion): Buffer | undefined {
    try {
      return clientProxyHeader(client, version, this.#policy().portals);
    } catch (err) {
      // An address the encoder cannot take: this connection fails, never the process.
      this.#log.warn('cannot write a PROXY protocol header', { service: this.spn, client: clientPeer(client)?.address, error: (err as Error).message });
      return undefined;
    }
  }

  #live(): Map<Client, Connection> {
    return (this.#connections ??= new Map());
  }

  /** The forwarders' close callback, one for the port. */
  #forwarderClosed(): (forwarder: Forwarder) => void {
    return (this.#onForwarderClosed ??= (forwarder) => this.#forget(forwarder.client));
  }

  /** The connection is finished: its descriptors go back to the budget. */
  #forget(client: Client): void {
    if (this.#connections?.delete(client) === true) this.#budget?.release(DESCRIPTORS_PER_CONNECTION);
    if (this.size === 0) this.#onEmpty();
  }

  /** A net.Server's 'error' listener: accept errors. */
  readonly onAcceptError = (err: NodeJS.ErrnoException): void => {
    this.#failures().acceptError(err);
  };

  #failures(): ConnectionFailures {
    return (this.#failed ??= new ConnectionFailures(this.spn, this.stats, this.#log));
  }
}
