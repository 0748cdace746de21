import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { LoadBalancer } from '../../balancer/load-balancer.js';
import { ClosedError, InvalidConfigError } from '../../errors.js';
import { formatHostPort } from '../../net/host-port.js';
import { logger } from '../../log.js';
import type { Logger } from '../../log.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import { clientIP } from '../client-ip.js';
import { isLocalResourceError } from '../descriptor-budget.js';
import type { DescriptorBudget } from '../descriptor-budget.js';
import type { EndpointBackoff } from '../endpoint-backoff.js';
import type { EndpointConnector } from '../endpoint-connector.js';
import { listenError } from '../../net/listen-error.js';
import { whenBound } from '../../net/when-bound.js';
import { LogThrottle } from '../log-throttle.js';
import type { ListenAddress, ProxySocket } from '../proxy-socket.js';
import { ProxyStats } from '../proxy-stats.js';
import { Dialer } from './dialer.js';
import type { DialOutcome, PendingDial } from './dialer.js';
import type { ProxyProtocolVersion } from '../../model/proxy-protocol-annotation.js';
import type { TcpConnectionPolicy } from './connection-policy.js';
import { listeningHandle, TCP_HANDLES } from '../../internals/tcp-handles.js';
import type { TcpHandle } from '../../internals/tcp-handles.js';
import { HANDLE_CONNECTOR } from './handle-connector.js';
import { HandleForwarder, resetHandle } from './handle-forwarder.js';
import { IdleSweep } from './idle-sweep.js';
import { proxyProtocolHeader } from './proxy-protocol-header.js';
import { reset, STREAM_HIGH_WATER_MARK, TcpForwarder } from './tcp-forwarder.js';

export interface TcpProxySocketOptions {
  readonly spn: ProxySocketKey;
  /** One listener per address; port 0 lets the kernel choose. */
  readonly listen: readonly ListenAddress[];
  readonly balancer: LoadBalancer;
  /** Shared by every proxy socket of the process. */
  readonly backoff: EndpointBackoff;
  /** One connect timeout per attempt; default 250, 500, 1000, 2000 ms as the legacy proxier. */
  readonly dialTimeoutsMs?: readonly number[];
  readonly log?: Logger;
  /**
   * Listening handles another process opened (one per listen address, see listeningHandles()):
   * this socket accepts on them too instead of binding its own; `listen` is then what they are
   * bound to, for logs and addresses().
   */
  readonly handles?: readonly object[];
  /**
   * Bind with SO_REUSEPORT (Node >= 22.12; see lib/workers/tcp-listener-mode.ts): other processes
   * may bind the same address and port with it too, each with an accept queue of its own.
   */
  readonly reusePort?: boolean;
  /**
   * The process's descriptor budget (shared by every proxy socket of the process): a connection
   * takes two (client and upstream) for its life, and one that does not fit is refused at once.
   * Without it, connections are limited only by the kernel.
   */
  readonly budget?: DescriptorBudget;
  /** Close a connection with no byte either way for this long; 0 (the default) = never. See setIdleTimeout(). */
  readonly idleTimeoutMs?: number;
  /** Reach endpoints through this instead of their IPs (--dial-via port-forward). */
  readonly connector?: EndpointConnector | undefined;
  /** The Service's wishes for the connections: PROXY protocol header, max connection age. See setConnectionPolicy(). */
  readonly policy?: TcpConnectionPolicy;
  /** The max connection age's jitter, [0, 1); default Math.random (tests inject a seeded one). */
  readonly random?: () => number;
  /**
   * 'handles' (the default): connections are forwarded on libuv's TCP handles directly
   * (HandleForwarder), where this Node allows it and no connector is given; 'net': always on
   * net.Socket (TcpForwarder).
   */
  readonly dataPath?: 'handles' | 'net';
}

type Client = net.Socket | TcpHandle;
type Connection = PendingDial | TcpForwarder | HandleForwarder;

/** Descriptors a proxied connection holds: the client's and the upstream's. */
const DESCRIPTORS_PER_CONNECTION = 2;

/** Lines about running out of local resources: at most one per this interval per port, with a count. */
export const LOCAL_RESOURCE_LOG_INTERVAL_MS = 5000;

/** Accept queue length: bursts of new connections wait in the kernel instead of being dropped. */
const BACKLOG = 4096;

function ignore(): void {}

/**
 * The TCP side of one service port: accepts client connections on every listen address and
 * forwards each to an endpoint chosen by the balancer.
 *
 * Each client is accepted paused (pauseOnConnect), so nothing it sends is read before its
 * upstream exists; the dial runs asynchronously and never holds up other clients.
 */
export class TcpProxySocket implements ProxySocket {
  readonly spn: ProxySocketKey;
  readonly protocol = 'TCP' as const;
  readonly stats = new ProxyStats({ liveEndpoints: () => this.#balancer.endpoints(this.spn) });

  readonly #listen: readonly ListenAddress[];
  readonly #handles: readonly object[] | undefined;
  readonly #reusePort: boolean;
  readonly #balancer: LoadBalancer;
  readonly #dialer: Dialer;
  readonly #log: Logger;
  #servers: net.Server[] = [];
  /** Every client connection not yet finished: dialing (PendingDial) or forwarding. */
  readonly #connections = new Map<Client, Connection>();
  /** Dials upstream handles: set when this socket forwards on handles (see dataPath). */
  readonly #handleDialer: Dialer<TcpHandle> | undefined;
  #starting: Promise<void> | undefined;
  #opening = false;
  #closing: Promise<void> | undefined;
  #destroyed = false;
  // Dial give-ups and accept errors come in floods when an endpoint set is dead or the process is
  // out of descriptors: warn at most once a second each, with the count of lines held back.
  readonly #giveUpLog = new LogThrottle(1000);
  readonly #acceptErrorLog = new LogThrottle(1000);
  readonly #localResourceLog = new LogThrottle(LOCAL_RESOURCE_LOG_INTERVAL_MS);
  readonly #budget: DescriptorBudget | undefined;
  readonly #idle: IdleSweep;
  #policy: TcpConnectionPolicy = {};

  constructor(options: TcpProxySocketOptions) {
    if (!Array.isArray(options.listen) || options.listen.length === 0) {
      throw new InvalidConfigError([`${options.spn}: a TCP proxy socket needs at least one listen address`]);
    }
    this.spn = options.spn;
    this.#listen = Object.freeze(options.listen.map((a) => ({ host: a.host, port: a.port, ...(a.ipv6Only === true ? { ipv6Only: true } : {}) })));
    if (options.handles !== undefined && options.handles.length !== options.listen.length) {
      throw new InvalidConfigError([`${options.spn}: ${options.handles.length} listening handles for ${options.listen.length} listen addresses`]);
    }
    this.#handles = options.handles;
    this.#reusePort = options.reusePort === true;
    this.#balancer = options.balancer;
    // lc, sed and nq read the per-endpoint active counts this socket keeps anyway.
    options.balancer.trackConnections?.(options.spn, this.stats.endpoints);
    this.#log = options.log ?? logger('tcp');
    this.#budget = options.budget;
    const idleTimeoutMs = options.idleTimeoutMs ?? 0;
    if (!Number.isSafeInteger(idleTimeoutMs) || idleTimeoutMs < 0) {
      throw new InvalidConfigError([`${options.spn}: idleTimeoutMs must be a non-negative integer (ms), got ${String(idleTimeoutMs)}`]);
    }
    this.#idle = new IdleSweep(() => this.#forwarders(), options.random);
    this.#idle.set(idleTimeoutMs);
    if (options.policy !== undefined) this.setConnectionPolicy(options.policy);
    this.#dialer = new Dialer({
      spn: options.spn,
      balancer: options.balancer,
      backoff: options.backoff,
      stats: this.stats,
      timeoutsMs: options.dialTimeoutsMs ?? options.connector?.dialTimeoutsMs,
      log: this.#log,
      connector: options.connector,
    });
    if (TCP_HANDLES !== undefined && options.dataPath !== 'net' && options.connector === undefined) {
      this.#handleDialer = new Dialer<TcpHandle>({
        spn: options.spn,
        balancer: options.balancer,
        backoff: options.backoff,
        stats: this.stats,
        timeoutsMs: this.#dialer.timeoutsMs,
        log: this.#log,
        connector: HANDLE_CONNECTOR,
      });
    }
  }

  /** Whether connections are forwarded on libuv handles (see dataPath). */
  get forwardsOnHandles(): boolean {
    return this.#handleDialer !== undefined;
  }

  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError(`TCP proxy socket ${this.spn}`));
    // A failed start opened nothing, so it may be retried (the port may be free by then).
    this.#starting ??= this.#open().catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  async #open(): Promise<void> {
    this.#opening = true;
    const servers = this.#listen.map(() =>
      net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: STREAM_HIGH_WATER_MARK } as net.ServerOpts, this.#onConnection),
    );
    this.#servers = servers;
    const handles = this.#handles;
    const results = await Promise.allSettled(
      servers.map((server, i) => (handles === undefined ? listen(server, this.#listen[i] as ListenAddress, this.#reusePort) : adopt(server, handles[i] as object))),
    );
    const failed = results.findIndex((r) => r.status === 'rejected');
    this.#opening = false;
    if (failed >= 0 || this.#closing !== undefined) {
      // All or none: a service that is reachable on some of its addresses only is harder to
      // diagnose than one that failed to open.
      for (const server of servers) if (server.listening) server.close();
      this.#servers = [];
      if (failed < 0) throw new ClosedError(`TCP proxy socket ${this.spn}`);
      const { host, port } = this.#listen[failed] as ListenAddress;
      throw listenError(host, port, (results[failed] as PromiseRejectedResult).reason);
    }
    for (const server of servers) {
      server.on('error', this.#onAcceptError);
      // A server whose handle cannot be taken over keeps accepting net.Sockets.
      if (this.#handleDialer !== undefined) TCP_HANDLES?.takeAccepts(server, this.#onHandle);
    }
    // addresses() asks the kernel (getsockname): not worth it for a line that is not logged.
    if (this.#log.isInfoEnabled()) {
      this.#log.info('opened proxy socket', { service: this.spn, protocol: 'TCP', addresses: this.addresses().map((a) => formatHostPort(a.host, a.port)) });
    }
  }

  addresses(): ListenAddress[] {
    const out: ListenAddress[] = [];
    for (const server of this.#servers) {
      const addr = server.address() as AddressInfo | null;
      if (addr !== null) out.push({ host: addr.address, port: addr.port });
    }
    return out;
  }

  /**
   * The native handles of the open listeners, for another process to accept on as well (sent with
   * child_process send()). Not the net.Server: the receiving side would wrap that in a server with
   * default options (no pauseOnConnect, no allowHalfOpen); the handle lets it make its own.
   */
  listeningHandles(): object[] {
    return this.#servers.map(listeningHandle).filter((h): h is object => h !== undefined);
  }

  /**
   * Changes the idle timeout (a Service's annotation changed): applies to established connections
   * too, counting their silence from before the change. 0 = never.
   */
  setIdleTimeout(timeoutMs: number): void {
    if (this.#destroyed || !Number.isSafeInteger(timeoutMs) || timeoutMs < 0) return;
    this.#idle.set(timeoutMs);
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
    this.#policy = { ...policy };
    this.#idle.setMaxAge(age);
  }

  /** The connection policy in force. */
  connectionPolicy(): TcpConnectionPolicy {
    return this.#policy;
  }

  /** The idle timeout in force (ms; 0 = never). */
  idleTimeoutMs(): number {
    return this.#idle.timeoutMs;
  }

  *#forwarders(): Generator<TcpForwarder | HandleForwarder> {
    for (const conn of this.#connections.values()) if ((conn instanceof HandleForwarder || conn instanceof TcpForwarder) && conn.upstream !== undefined) yield conn;
  }

  /** Client connections not yet finished, dialing or established. */
  connectionCount(): number {
    return this.#connections.size;
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#opening) {
      // Listening is under way: start() sees #closing when it completes and closes what it opened.
      this.#closing = (this.#starting as Promise<void>).then(ignore, ignore);
      return this.#closing;
    }
    const servers = this.#servers;
    for (const server of servers) if (server.listening) server.close();
    // The sweep goes on while established connections finish (see #forget).
    if (this.#connections.size === 0) this.#idle.stop();
    // Not waiting for the servers' 'close' events: those come only after every connection has
    // ended, and established connections outlive close() on purpose. libuv closes the listening
    // descriptor inside server.close(), so the port is released by now.
    if (servers.length > 0) this.#log.info('closed proxy socket', { service: this.spn, protocol: 'TCP', connections: this.#connections.size });
    this.#closing = Promise.resolve();
    return this.#closing;
  }

  destroy(): void {
    void this.close();
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#idle.stop();
    this.#budget?.release(DESCRIPTORS_PER_CONNECTION * this.#connections.size);
    for (const [client, conn] of this.#connections) {
      if (conn instanceof TcpForwarder || conn instanceof HandleForwarder) {
        conn.destroy();
      } else {
        conn.cancel();
        if (client instanceof net.Socket) reset(client);
        else resetHandle(client);
      }
    }
    this.#connections.clear();
  }

  readonly #onConnection = (client: net.Socket): void => {
    const stats = this.stats;
    stats.total++;
    // Until the forwarder takes over, a reset client must not crash the process.
    client.on('error', ignore);
    if (this.#destroyed) {
      client.destroy();
      return;
    }
    if (this.#balancer.endpoints(this.spn).length === 0) {
      this.#rejectNoEndpoint(client, () => reset(client));
      return;
    }
    if (this.#budget !== undefined && !this.#budget.tryAcquire(DESCRIPTORS_PER_CONNECTION)) {
      // Refused before the process hits EMFILE somewhere it cannot handle it (or the health and
      // metrics servers and the API source can no longer open a socket). A RST: the client
      // learns at once, and may retry elsewhere.
      stats.localResourceErrors++;
      reset(client);
      this.#logLocalResource('refused connection: descriptor budget reached', 'EMFILE', { budget: this.#budget.size });
      return;
    }
    const ip = clientIP(client.remoteAddress);
    // Made before dialing: it is the upstream socket's onread.
    const forwarder = new TcpForwarder(client, stats, this.#onForwarderClosed);
    this.#connections.set(
      client,
      this.#dialer.dial(ip, (outcome) => this.#dialed(client, ip, forwarder, outcome), forwarder),
    );
  };

  /** A connection accepted as a libuv handle (see dataPath): as #onConnection, on the handle path. */
  readonly #onHandle = (error: string | undefined, client: TcpHandle | undefined): void => {
    if (error !== undefined || client === undefined) {
      this.#onAcceptError(Object.assign(new Error(`accept ${error}`), { code: error, syscall: 'accept' }));
      return;
    }
    const stats = this.stats;
    stats.total++;
    if (this.#destroyed) {
      client.close();
      return;
    }
    if (this.#balancer.endpoints(this.spn).length === 0) {
      this.#rejectNoEndpoint(TCP_HANDLES?.peer(client)?.address ?? '', () => resetHandle(client));
      return;
    }
    if (this.#budget !== undefined && !this.#budget.tryAcquire(DESCRIPTORS_PER_CONNECTION)) {
      stats.localResourceErrors++;
      resetHandle(client);
      this.#logLocalResource('refused connection: descriptor budget reached', 'EMFILE', { budget: this.#budget.size });
      return;
    }
    const ip = clientIP(TCP_HANDLES?.peer(client)?.address);
    const forwarder = new HandleForwarder(client, stats, this.#onForwarderClosed);
    this.#connections.set(
      client,
      (this.#handleDialer as Dialer<TcpHandle>).dial(ip, (outcome) => this.#handleDialed(client, ip, forwarder, outcome)),
    );
  };

  #handleDialed(client: TcpHandle, ip: string, forwarder: HandleForwarder, outcome: DialOutcome<TcpHandle>): void {
    if (outcome.kind !== 'connected') {
      this.#forget(client);
      this.#dialFailed(outcome, ip, () => resetHandle(client));
      return;
    }
    const upstream = outcome.socket;
    if (forwarder.clientClosed) {
      upstream.close();
      this.#forget(client);
      return;
    }
    let header: Buffer | undefined;
    const version = this.#policy.proxyProtocol;
    if (version !== undefined) {
      const remote = TCP_HANDLES?.peer(client);
      const local = TCP_HANDLES?.local(client);
      header = remote === undefined || local === undefined ? undefined : this.#proxyHeaderFor(version, remote.address, remote.port, local.address, local.port);
      if (header === undefined) {
        upstream.close();
        this.#forget(client);
        resetHandle(client);
        return;
      }
    }
    this.#connections.set(client, forwarder);
    forwarder.start(upstream, outcome.endpointStats, header);
    if (this.#log.isDebugEnabled()) {
      this.#log.debug('proxying connection', { service: this.spn, client: formatHostPort(ip, TCP_HANDLES?.peer(client)?.port ?? 0), endpoint: outcome.endpoint.key, attempts: outcome.attempts });
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
      const version = this.#policy.proxyProtocol;
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
      this.#connections.set(client, forwarder);
      if (this.#log.isDebugEnabled()) {
        this.#log.debug('proxying connection', { service: this.spn, client: formatHostPort(ip, client.remotePort ?? 0), endpoint: outcome.endpoint.key, attempts: outcome.attempts });
      }
      return;
    }
    this.#forget(client);
    this.#dialFailed(outcome, ip, () => reset(client));
  }

  /** The dial did not connect: the client gets a RST, and the reason is counted and logged. */
  #dialFailed(outcome: Exclude<DialOutcome<unknown>, { kind: 'connected' }>, ip: string, resetClient: () => void): void {
    if (outcome.kind === 'no-endpoint') {
      this.#rejectNoEndpoint(ip, resetClient);
      return;
    }
    if (outcome.kind === 'local-error') {
      // Counted by the dialer; the endpoint is not to blame and was not backed off.
      resetClient();
      this.#logLocalResource('cannot open a connection to an endpoint: out of local resources', outcome.reason, { endpoint: outcome.endpoint.key });
      return;
    }
    this.stats.dialGiveUps++;
    // A RST rather than a FIN: the client must not mistake "no endpoint answered" for an empty reply.
    resetClient();
    const suppressed = this.#giveUpLog.take();
    if (suppressed >= 0) {
      this.#log.warn('failed to connect to an endpoint', {
        service: this.spn,
        client: ip,
        lastEndpoint: outcome.endpoint.key,
        attempts: outcome.attempts,
        reason: outcome.reason,
        suppressed,
      });
    }
  }

  #proxyHeader(client: net.Socket, version: ProxyProtocolVersion): Buffer | undefined {
    const { remoteAddress, remotePort, localAddress, localPort } = client;
    if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return undefined;
    return this.#proxyHeaderFor(version, remoteAddress, remotePort, localAddress, localPort);
  }

  #proxyHeaderFor(version: ProxyProtocolVersion, remoteAddress: string, remotePort: number, localAddress: string, localPort: number): Buffer | undefined {
    try {
      return proxyProtocolHeader(version, { host: remoteAddress, port: remotePort }, this.#policy.portals, { host: localAddress, port: localPort });
    } catch (err) {
      // An address the encoder cannot take: this connection fails, never the process.
      this.#log.warn('cannot write a PROXY protocol header', { service: this.spn, client: remoteAddress, error: (err as Error).message });
      return undefined;
    }
  }

  /**
   * Normally the kernel refuses connections to a port without endpoints (a reject rule, or no
   * listener in `--redirect none`); a connection lands here only in the moment before the rules or
   * listeners follow an endpoint change. A RST, not a FIN: to the client as close to "refused" as an
   * accepted connection can be, and never mistaken for an empty reply.
   */
  #rejectNoEndpoint(client: net.Socket | string, resetClient: () => void): void {
    this.stats.noEndpointRejections++;
    if (this.#log.isDebugEnabled()) this.#log.debug('no endpoint, resetting connection', { service: this.spn, client: typeof client === 'string' ? client : client.remoteAddress });
    resetClient();
  }

  readonly #onForwarderClosed = (forwarder: TcpForwarder | HandleForwarder): void => {
    this.#forget(forwarder.client);
  };

  /** The connection is finished: its descriptors go back to the budget. */
  #forget(client: Client): void {
    if (this.#connections.delete(client)) this.#budget?.release(DESCRIPTORS_PER_CONNECTION);
    if (this.#closing !== undefined && this.#connections.size === 0) this.#idle.stop();
  }

  /** One warning per interval for the whole port, with how many occurrences it stands for. */
  #logLocalResource(message: string, code: string, fields: Record<string, unknown>): void {
    const suppressed = this.#localResourceLog.take();
    if (suppressed >= 0) this.#log.warn(message, { service: this.spn, code, ...fields, localResourceErrors: this.stats.localResourceErrors, suppressed });
  }

  readonly #onAcceptError = (err: NodeJS.ErrnoException): void => {
    // EMFILE and friends: libuv keeps listening, so this is logged, not fatal (the legacy
    // proxier panicked here). Out of descriptors, libuv accepts and closes the pending
    // connections with a reserve descriptor (so clients get an immediate close rather than a
    // hang) and reports one error for the lot: counted here, as one local resource error.
    if (isLocalResourceError(err.code)) {
      this.stats.localResourceErrors++;
      this.#logLocalResource('accept failed: out of local resources, pending connections closed', err.code as string, {});
      return;
    }
    const suppressed = this.#acceptErrorLog.take();
    if (suppressed >= 0) this.#log.warn('accept failed', { service: this.spn, code: err.code, error: err, suppressed });
  };
}

function listen(server: net.Server, address: ListenAddress, reusePort: boolean): Promise<void> {
  const options = { host: address.host, port: address.port, backlog: BACKLOG, ipv6Only: address.ipv6Only === true, ...(reusePort ? { reusePort } : {}) };
  return whenBound(server, (bound) => server.listen(options, bound));
}

function adopt(server: net.Server, handle: object): Promise<void> {
  return whenBound(server, (bound) => server.listen(handle, BACKLOG, bound));
}
