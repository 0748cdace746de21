import dgram from 'node:dgram';
import type { LoadBalancer } from '../../balancer/load-balancer.js';
import { ClosedError, InvalidConfigError } from '../../errors.js';
import { formatHostPort } from '../../net/host-port.js';
import { connectedSender, receiveDirect } from '../../internals/udp-handles.js';
import { logger } from '../../log.js';
import type { Logger } from '../../log.js';
import type { Endpoint } from '../../model/endpoint.js';
import type { ProxySocketKey } from '../../model/service-port-name.js';
import { clientIP } from '../client-ip.js';
import { isLocalResourceError } from '../descriptor-budget.js';
import type { DescriptorBudget } from '../descriptor-budget.js';
import type { EndpointBackoff } from '../endpoint-backoff.js';
import { listenError } from '../../net/listen-error.js';
import { LogThrottle } from '../log-throttle.js';
import { pickEndpoint } from '../pick-endpoint.js';
import type { ListenAddress, ProxySocket } from '../proxy-socket.js';
import { ProxyStats } from '../proxy-stats.js';
import { udpNativeAvailable } from '../../internals/udp-native.js';
import type { EndpointStats } from '../proxy-stats.js';
import { bindListeningSocket, createListeningSocket, socketType } from './listening-socket.js';
import { NativeSessions } from './native-sessions.js';
import type { NativeSessionHandlers } from './native-sessions.js';
import { closeQuietly, endSession, openReplySocket, sendOrQueue } from './session-sockets.js';
import type { UdpSessionPlacement } from './udp-session-placement.js';
import { UdpSession } from './udp-session.js';
import { UdpSessionTable } from './udp-session-table.js';
import type { RemovalReason } from './udp-session-table.js';

export interface UdpProxySocketOptions {
  readonly spn: ProxySocketKey;
  /** One socket per address; port 0 lets the kernel choose. */
  readonly listen: readonly ListenAddress[];
  readonly balancer: LoadBalancer;
  /** Shared by every proxy socket of the process. */
  readonly backoff: EndpointBackoff;
  /** A session with no datagram either way for this long is closed. Default 30000 ms. */
  readonly idleTimeoutMs?: number;
  /** Most sessions at once; past it the least recently active is evicted. Default 65536. */
  readonly maxSessions?: number;
  readonly log?: Logger;
  /** Other processes that may hold some of the sessions; without it, all are held here. */
  readonly placement?: UdpSessionPlacement;
  /**
   * The process's descriptor budget: a session takes two (upstream and reply socket); a new
   * client that does not fit is dropped and counted as a local resource error.
   */
  readonly budget?: DescriptorBudget;
  /**
   * Where sessions' datagrams pass: 'native' (the default) on the native data path when this
   * installation has it (lib/internals/udp-native.ts), else on dgram sockets; 'dgram' always there.
   */
  readonly dataPath?: 'native' | 'dgram';
}

/** Descriptors a session holds: its upstream socket and its reply socket. */
export const DESCRIPTORS_PER_UDP_SESSION = 2;

/** Lines about running out of local resources: at most one per this interval per port, with a count. */
const LOCAL_RESOURCE_LOG_INTERVAL_MS = 5000;

export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_UDP_MAX_SESSIONS = 65_536;

function ignore(): void {}

/**
 * The UDP side of one service port: a session per client address, each with its own upstream
 * socket connect()ed to the endpoint picked for it (connected, so the kernel filters replies to
 * that endpoint and reports ICMP errors such as port unreachable). Replies go back to the client
 * from the service's listening socket, so they come from the address the client sent to.
 *
 * Datagrams of any size up to 65,507 bytes pass intact (the legacy proxier read into a 4 KiB
 * buffer and truncated). Unlike TCP, close() ends the sessions too: a UDP "connection" is only
 * this table.
 */
export class UdpProxySocket implements ProxySocket {
  readonly spn: ProxySocketKey;
  readonly protocol = 'UDP' as const;
  readonly stats: ProxyStats;

  readonly #listen: readonly ListenAddress[];
  readonly #balancer: LoadBalancer;
  readonly #backoff: EndpointBackoff;
  readonly #log: Logger;
  readonly #table: UdpSessionTable<UdpSession>;
  readonly #maxSessions: number;
  /**
   * Clients whose last session ended with an upstream error: their next session is picked with
   * reset=true, bypassing affinity (kubernetes#24648). Insertion ordered, capped at maxSessions.
   */
  #resetNext: Map<string, true> | undefined;
  #sockets: dgram.Socket[] = [];
  #starting: Promise<void> | undefined;
  /** start() is binding: close() then leaves the sockets to it (closing a binding socket would hang bind). */
  #opening = false;
  #closing: Promise<void> | undefined;
  // The maps and throttles are made on first use: most ports of a large cluster never need them.
  #errorLog: LogThrottle | undefined;
  #localResourceLog: LogThrottle | undefined;
  readonly #budget: DescriptorBudget | undefined;
  readonly #placement: UdpSessionPlacement | undefined;
  /** Sessions held by other processes: key to host. */
  #remote: Map<string, number> | undefined;
  /** Whether new sessions go on the native data path: false when asked not to, or it is not there. */
  readonly #nativeWanted: boolean;
  /** Made with the first native session: most ports of a large cluster never see one. */
  #native: NativeSessions<UdpSession> | undefined;

  constructor(options: UdpProxySocketOptions) {
    const { idleTimeoutMs = DEFAULT_UDP_IDLE_TIMEOUT_MS, maxSessions = DEFAULT_UDP_MAX_SESSIONS } = options;
    const problems: string[] = [];
    if (!Array.isArray(options.listen) || options.listen.length === 0) problems.push(`${options.spn}: a UDP proxy socket needs at least one listen address`);
    if (!Number.isFinite(idleTimeoutMs) || idleTimeoutMs <= 0) problems.push(`idleTimeoutMs must be a positive number, got ${String(idleTimeoutMs)}`);
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) problems.push(`maxSessions must be a positive integer, got ${String(maxSessions)}`);
    if (problems.length > 0) throw new InvalidConfigError(problems);
    this.spn = options.spn;
    this.#listen = Object.freeze(options.listen.map((a) => ({ host: a.host, port: a.port, ...(a.ipv6Only === true ? { ipv6Only: true } : {}) })));
    this.#balancer = options.balancer;
    this.stats = new ProxyStats({ rotation: options.balancer, spn: options.spn });
    // lc, sed and nq read the per-endpoint session counts this socket keeps anyway.
    options.balancer.trackConnections?.(options.spn, this.stats);
    this.#backoff = options.backoff;
    this.#log = options.log ?? logger('udp');
    this.#maxSessions = maxSessions;
    this.#placement = options.placement;
    this.#budget = options.budget;
    this.#nativeWanted = options.dataPath !== 'dgram' && udpNativeAvailable();
    this.#table = new UdpSessionTable<UdpSession>(idleTimeoutMs, maxSessions, this.#onRemoved, Date.now, () => this.#native?.refresh(this.#table));
  }

  start(): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClosedError(`UDP proxy socket ${this.spn}`));
    // A failed start opened nothing, so it may be retried (the port may be free by then).
    this.#starting ??= this.#open().catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  async #open(): Promise<void> {
    this.#opening = true;
    const sockets = this.#listen.map(createListeningSocket);
    this.#sockets = sockets;
    const results = await Promise.allSettled(sockets.map((s, i) => bindListeningSocket(s, this.#listen[i] as ListenAddress)));
    const failed = results.findIndex((r) => r.status === 'rejected');
    this.#opening = false;
    if (failed >= 0 || this.#closing !== undefined) {
      // All or none; a socket whose bind failed still holds a handle, so every one is closed.
      for (const s of sockets) closeQuietly(s);
      this.#sockets = [];
      if (failed < 0) throw new ClosedError(`UDP proxy socket ${this.spn}`);
      const { host, port } = this.#listen[failed] as ListenAddress;
      throw listenError(host, port, (results[failed] as PromiseRejectedResult).reason);
    }
    sockets.forEach((s, i) => {
      s.on('error', this.#onListenError);
      s.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => this.#onClientDatagram(s, i, msg, rinfo));
    });
    // addresses() asks the kernel (getsockname): not worth it for a line that is not logged.
    if (this.#log.isInfoEnabled()) {
      this.#log.info('opened proxy socket', { service: this.spn, protocol: 'UDP', addresses: this.addresses().map((a) => formatHostPort(a.host, a.port)), dataPath: this.dataPath });
    }
  }

  addresses(): ListenAddress[] {
    const out: ListenAddress[] = [];
    if (this.#closing !== undefined) return out;
    for (const s of this.#sockets) {
      try {
        const a = s.address();
        out.push({ host: a.address, port: a.port });
      } catch {
        // Not bound (yet): start() has not finished.
      }
    }
    return out;
  }

  /** Where new sessions' datagrams pass. */
  get dataPath(): 'native' | 'dgram' {
    return this.#nativeWanted ? 'native' : 'dgram';
  }

  /** Live client sessions. */
  sessionCount(): number {
    return this.#table.size;
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    if (this.#opening) {
      this.#closing = (this.#starting as Promise<void>).then(ignore, ignore);
      return this.#closing;
    }
    const bound = this.addresses().length > 0;
    const sockets = this.#sockets;
    this.#sockets = [];
    const sessions = this.#table.clear();
    for (const session of sessions) this.#closeSession(session);
    this.#remote?.clear();
    // dgram's close() releases the descriptor synchronously; the promise waits for the 'close' events.
    const closed = sockets.map((s) => new Promise<void>((resolve) => closeQuietly(s, resolve)));
    if (bound) this.#log.info('closed proxy socket', { service: this.spn, protocol: 'UDP', sessions: sessions.length });
    this.#closing = Promise.all(closed).then(() => undefined);
    return this.#closing;
  }

  destroy(): void {
    void this.close();
  }

  /** A session held by another process ended; `failedEndpoint` if it ended on an upstream error. */
  remoteClosed(key: string, failedEndpoint?: string): void {
    this.#remote?.delete(key);
    if (failedEndpoint !== undefined) {
      this.#backoff.fail(failedEndpoint);
      this.#markReset(key);
    }
  }

  /** Every session held by `host` is gone (the process exited): their clients start anew. */
  dropRemote(host: number): void {
    const remote = this.#remote;
    if (remote !== undefined) for (const [key, h] of remote) if (h === host) remote.delete(key);
  }

  /** A datagram another process received on a socket bound to this port's address before it was connected. */
  strayDatagram(listenIndex: number, msg: Buffer, address: string, port: number): void {
    const socket = this.#sockets[listenIndex];
    if (socket !== undefined) this.#strayDatagram(socket, listenIndex, msg, address, port);
  }

  #strayDatagram(listenSocket: dgram.Socket, listenIndex: number, msg: Buffer, address: string, port: number): void {
    this.#onClientDatagram(listenSocket, listenIndex, msg, { address, port, family: address.includes(':') ? 'IPv6' : 'IPv4', size: msg.length });
  }

  #onClientDatagram(listenSocket: dgram.Socket, index: number, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${index} ${rinfo.address} ${rinfo.port}`;
    let session = this.#table.get(key);
    if (session === undefined) {
      const placement = this.#placement;
      if (placement !== undefined) {
        const host = this.#remote?.get(key);
        if (host !== undefined) {
          placement.forward(host, key, msg);
          return;
        }
        const where = placement.place();
        if (where !== undefined) {
          this.#placeRemote(placement, where, key, listenSocket, index, rinfo, msg);
          return;
        }
      }
      session = this.#newSession(key, listenSocket, index, rinfo);
      if (session === undefined) return;
    } else {
      this.#table.touch(session);
    }
    if (sendOrQueue(session, msg)) this.stats.bytesIn += msg.length;
  }

  /** The endpoint for a new session, or undefined (counted) when the port has none. */
  #pick(key: string, rinfo: dgram.RemoteInfo): Endpoint | undefined {
    const reset = this.#resetNext?.delete(key) === true;
    const ep = pickEndpoint(this.#balancer, this.#backoff, this.spn, clientIP(rinfo.address), reset);
    if (ep === undefined) {
      this.stats.noEndpointRejections++;
      if (this.#log.isDebugEnabled()) this.#log.debug('no endpoint, dropping datagram', { service: this.spn, client: formatHostPort(rinfo.address, rinfo.port) });
    } else if (this.#log.isDebugEnabled()) {
      this.#log.debug('new UDP session', { service: this.spn, client: formatHostPort(rinfo.address, rinfo.port), endpoint: ep.key, reset });
    }
    return ep;
  }

  #placeRemote(placement: UdpSessionPlacement, host: number, key: string, listenSocket: dgram.Socket, index: number, rinfo: dgram.RemoteInfo, first: Buffer): void {
    const ep = this.#pick(key, rinfo);
    if (ep === undefined) return;
    let local: ReturnType<dgram.Socket['address']>;
    try {
      local = listenSocket.address();
    } catch {
      return;
    }
    (this.#remote ??= new Map()).set(key, host);
    placement.open(
      host,
      {
        key,
        listenIndex: index,
        local: { address: local.address, port: local.port, family: local.family === 'IPv6' ? 'udp6' : 'udp4' },
        client: { address: rinfo.address, port: rinfo.port },
        endpoint: ep,
      },
      first,
    );
  }

  #newSession(key: string, listenSocket: dgram.Socket, index: number, rinfo: dgram.RemoteInfo): UdpSession | undefined {
    const stats = this.stats;
    const ep = this.#pick(key, rinfo);
    if (ep === undefined) return undefined;
    if (this.#table.full) this.#table.evictOldest();
    const budget = this.#budget;
    if (budget !== undefined && !budget.tryAcquire(DESCRIPTORS_PER_UDP_SESSION)) {
      // The budget is spent (--udp-max-sessions above what it holds, or other ports hold it):
      // counted as local resource pressure. This port's least recently active session makes
      // room, as the session cap would; with none here, the datagram is dropped (the client
      // retries) rather than opening sockets the process may not have.
      stats.localResourceErrors++;
      const evicted = this.#table.size > 0 && this.#table.evictOldest() !== undefined;
      const admitted = evicted && budget.tryAcquire(DESCRIPTORS_PER_UDP_SESSION);
      this.#logLocalResource(admitted ? 'evicted a UDP session: descriptor budget reached' : 'dropped datagram of a new UDP client: descriptor budget reached', 'EMFILE', {
        client: formatHostPort(rinfo.address, rinfo.port),
        budget: budget.size,
      });
      if (!admitted) return undefined;
    }

    const endpointStats = stats.endpoint(ep.key);
    const session = this.#openNative(key, listenSocket, index, rinfo, ep, endpointStats) ?? this.#openDgram(key, listenSocket, index, rinfo, ep, endpointStats);
    stats.total++;
    stats.active++;
    endpointStats.total++;
    endpointStats.active++;
    this.#table.add(session);
    return session;
  }

  /** A session on the native data path, both sockets connected at once; undefined when not possible. */
  #openNative(key: string, listenSocket: dgram.Socket, index: number, rinfo: dgram.RemoteInfo, ep: Endpoint, endpointStats: EndpointStats): UdpSession | undefined {
    if (!this.#nativeWanted) return undefined;
    const native = (this.#native ??= NativeSessions.create(this.#nativeHandlers(), this.#maxSessions, this.stats));
    if (native === undefined) return undefined;
    let local: ReturnType<dgram.Socket['address']>;
    try {
      local = listenSocket.address();
    } catch {
      return undefined;
    }
    const session = new UdpSession(key, listenSocket, index, rinfo.address, rinfo.port, ep, endpointStats, undefined);
    const send = native.open(session, local, rinfo, { address: ep.ip, port: ep.port });
    if (send === undefined) return undefined;
    session.pending = undefined;
    session.toEndpoint = send;
    return session;
  }

  /** A session on dgram sockets, which connect over the next few ticks. */
  #openDgram(key: string, listenSocket: dgram.Socket, index: number, rinfo: dgram.RemoteInfo, ep: Endpoint, endpointStats: EndpointStats): UdpSession {
    const upstream = dgram.createSocket(socketType(ep.ip));
    const session = new UdpSession(key, listenSocket, index, rinfo.address, rinfo.port, ep, endpointStats, upstream);
    upstream.on('message', (reply: Buffer) => this.#onReply(session, reply));
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#onUpstreamError(session, err.code));
    upstream.connect(ep.port, ep.ip, (err?: NodeJS.ErrnoException) => {
      if (err === undefined || err === null) this.#onConnected(session);
      else this.#onUpstreamError(session, err.code);
    });
    this.#openReplySocket(session);
    return session;
  }

  /** Made with the port's native group (most ports never have one). */
  #nativeHandlers(): NativeSessionHandlers<UdpSession> {
    return {
      upstreamError: (session, code) => this.#onUpstreamError(session, code),
      // The reply socket failed (not the client's port being closed, which the session outlives):
      // the session ends without blame on the endpoint, and the client's next datagram opens another.
      replyError: (session, code) => {
        if (session.closed) return;
        if (isLocalResourceError(code)) this.stats.localResourceErrors++;
        this.#table.delete(session);
        this.#closeSession(session);
      },
      stray: (session, msg, address, port) => this.#strayDatagram(session.listenSocket, session.listenIndex, msg, address, port),
    };
  }

  #openReplySocket(session: UdpSession): void {
    openReplySocket(session, {
      fromClient: (msg) => this.#onSessionDatagram(session, msg),
      fromOther: (msg, address, port) => this.#strayDatagram(session.listenSocket, session.listenIndex, msg, address, port),
      localResourceError: (code) => {
        this.stats.localResourceErrors++;
        this.#logLocalResource('cannot open a UDP reply socket: out of local resources', code, {});
      },
    });
  }

  /** A datagram from the client that reached its reply socket. */
  #onSessionDatagram(session: UdpSession, msg: Buffer): void {
    if (session.closed) return;
    this.#table.touch(session);
    if (sendOrQueue(session, msg)) this.stats.bytesIn += msg.length;
  }

  #onConnected(session: UdpSession): void {
    const pending = session.pending;
    session.pending = undefined;
    if (session.closed || pending === undefined) return;
    const upstream = session.upstream as dgram.Socket;
    const send = connectedSender(upstream);
    session.toEndpoint = send;
    receiveDirect(upstream, (reply) => this.#onReply(session, reply));
    for (const msg of pending) send(msg);
  }

  #onReply(session: UdpSession, reply: Buffer): void {
    if (session.closed) return;
    this.stats.bytesOut += reply.length;
    this.#table.touch(session);
    // From the listening socket's address, so the reply's source is the address the client sent
    // to (a connect()ed client, or the conntrack un-NAT of a portal, accepts nothing else).
    const toClient = session.toClient;
    if (toClient !== undefined) toClient(reply);
    else session.listenSocket.send(reply, session.clientPort, session.clientAddress);
  }

  #onUpstreamError(session: UdpSession, code: string | undefined): void {
    if (session.closed) return;
    if (isLocalResourceError(code)) {
      // This host could not open the socket: not the endpoint's fault, so no dial failure, no
      // back-off, and no reset of the client's affinity. The client's next datagram tries again.
      this.stats.localResourceErrors++;
      this.#table.delete(session);
      this.#closeSession(session);
      this.#logLocalResource('cannot open a UDP session socket: out of local resources', code as string, { endpoint: session.endpoint.key });
      return;
    }
    // Typically ECONNREFUSED: an ICMP port unreachable for a datagram we sent. The endpoint is
    // backed off for everyone, and this client re-picks with reset=true on its next datagram.
    const ep = session.endpoint;
    this.stats.dialFailures++;
    session.endpointStats.dialFailures++;
    const backoffMs = this.#backoff.fail(ep.key);
    this.#table.delete(session);
    this.#closeSession(session);
    this.#markReset(session.key);
    if (this.#log.isDebugEnabled()) {
      this.#log.debug('UDP session failed', { service: this.spn, client: formatHostPort(session.clientAddress, session.clientPort), endpoint: ep.key, code, backoffMs });
    }
  }

  /** The client's next session is picked with reset=true (its last one failed). */
  #markReset(key: string): void {
    const resetNext = (this.#resetNext ??= new Map());
    resetNext.set(key, true);
    if (resetNext.size > this.#maxSessions) {
      const oldest = resetNext.keys().next();
      if (oldest.done !== true) resetNext.delete(oldest.value);
    }
  }

  readonly #onRemoved = (session: UdpSession, reason: RemovalReason): void => {
    if (reason === 'evicted') this.stats.udpEvictions++;
    this.#closeSession(session);
    if (this.#log.isDebugEnabled()) {
      this.#log.debug('UDP session closed', { service: this.spn, client: formatHostPort(session.clientAddress, session.clientPort), endpoint: session.endpoint.key, reason });
    }
  };

  #closeSession(session: UdpSession): void {
    if (endSession(this.stats, session)) {
      this.#native?.close(session);
      session.reply = undefined;
      session.toClient = undefined;
      this.#budget?.release(DESCRIPTORS_PER_UDP_SESSION);
    }
  }

  /** One warning per interval for the whole port, with how many occurrences it stands for. */
  #logLocalResource(message: string, code: string, fields: Record<string, unknown>): void {
    const suppressed = (this.#localResourceLog ??= new LogThrottle(LOCAL_RESOURCE_LOG_INTERVAL_MS)).take();
    if (suppressed >= 0) this.#log.warn(message, { service: this.spn, code, ...fields, localResourceErrors: this.stats.localResourceErrors, suppressed });
  }

  readonly #onListenError = (err: NodeJS.ErrnoException): void => {
    if (isLocalResourceError(err.code)) this.stats.localResourceErrors++;
    const suppressed = (this.#errorLog ??= new LogThrottle(1000)).take();
    if (suppressed >= 0) this.#log.warn('UDP socket error', { service: this.spn, code: err.code, error: err, suppressed });
  };
}
