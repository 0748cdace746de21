import dgram from 'node:dgram';
import { connectedSender, receiveDirect } from '../internals/udp-handles.js';
import type { DatagramSender } from '../internals/udp-handles.js';
import { udpNativeAvailable } from '../internals/udp-native.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import { isLocalResourceError } from '../proxy/descriptor-budget.js';
import type { DescriptorBudget } from '../proxy/descriptor-budget.js';
import type { EndpointStats } from '../proxy/proxy-stats.js';
import { ProxyStats } from '../proxy/proxy-stats.js';
import { NativeSessions } from '../proxy/udp/native-sessions.js';
import type { NativeSessionHandlers } from '../proxy/udp/native-sessions.js';
import { endSession, sendOrQueue } from '../proxy/udp/session-sockets.js';
import { DESCRIPTORS_PER_UDP_SESSION } from '../proxy/udp/udp-proxy-socket.js';
import type { RemoteSessionRequest } from '../proxy/udp/udp-session-placement.js';
import { UdpSessionTable } from '../proxy/udp/udp-session-table.js';
import type { RemovalReason, TableEntry } from '../proxy/udp/udp-session-table.js';

class HostedSession {
  lastActiveMs = 0;
  olderEntry: TableEntry | undefined = undefined;
  newerEntry: TableEntry | undefined = undefined;
  /** Datagrams for the endpoint, until both sockets are connected; then undefined. */
  pending: Buffer[] | undefined = [];
  closed = false;
  /** Senders of the upstream and reply sockets, each set once its socket is connected. */
  toEndpoint: DatagramSender | undefined;
  toClient: DatagramSender | undefined;
  /** The session's id on the native data path, which then holds both its sockets. */
  nativeId: number | undefined = undefined;

  constructor(
    readonly key: string,
    readonly request: RemoteSessionRequest,
    readonly endpointStats: EndpointStats,
    /** Both undefined on the native data path. */
    readonly upstream: dgram.Socket | undefined,
    readonly reply: dgram.Socket | undefined,
  ) {}
}

export interface UdpSessionHostOptions {
  readonly spn: ProxySocketKey;
  readonly idleTimeoutMs: number;
  readonly maxSessions: number;
  /** A session ended; `failedEndpoint` when it ended on an upstream error. */
  readonly onClosed: (key: string, failedEndpoint: string | undefined) => void;
  /** A datagram of another client reached a reply socket before it was connected. */
  readonly onStray: (listenIndex: number, msg: Buffer, address: string, port: number) => void;
  /** This process's descriptor budget (each worker has its own open-file limit). */
  readonly budget?: DescriptorBudget;
  /** As UdpProxySocketOptions.dataPath: 'native' (the default) when this installation has it. */
  readonly dataPath?: 'native' | 'dgram';
}

/**
 * The UDP sessions of one service port that the agent process placed in this worker (see
 * UdpSessionPlacement). Each has an upstream socket connected to its endpoint and a reply socket
 * bound to the service's address and port and connected to the client, so the kernel delivers the
 * client's datagrams here and replies leave from the address the client sent to. Idle expiry and
 * the session cap work as in UdpProxySocket, counted per process.
 */
export class UdpSessionHost {
  readonly stats = new ProxyStats();
  readonly #options: UdpSessionHostOptions;
  readonly #table: UdpSessionTable<HostedSession>;
  readonly #nativeWanted: boolean;
  /** Made with the first native session. */
  #native: NativeSessions<HostedSession> | undefined;

  constructor(options: UdpSessionHostOptions) {
    this.#options = options;
    this.#table = new UdpSessionTable<HostedSession>(options.idleTimeoutMs, options.maxSessions, this.#onRemoved, Date.now, () => this.#native?.refresh(this.#table));
    this.#nativeWanted = options.dataPath !== 'dgram' && udpNativeAvailable();
  }

  get sessionCount(): number {
    return this.#table.size;
  }

  open(request: RemoteSessionRequest, first: Buffer): void {
    const existing = this.#table.get(request.key);
    if (existing !== undefined) {
      this.#toEndpoint(existing, first);
      return;
    }
    if (this.#table.full) this.#table.evictOldest();
    if (this.#options.budget !== undefined && !this.#options.budget.tryAcquire(DESCRIPTORS_PER_UDP_SESSION)) {
      // The agent forgets the session; the client's next datagram is placed anew.
      this.stats.localResourceErrors++;
      this.#options.onClosed(request.key, undefined);
      return;
    }
    const ep = request.endpoint;
    const endpointStats = this.stats.endpoint(ep.key);
    this.stats.total++;
    this.stats.active++;
    endpointStats.total++;
    endpointStats.active++;
    const session = this.#openNative(request, endpointStats) ?? this.#openDgram(request, endpointStats);
    this.#table.add(session);
    this.#toEndpoint(session, first);
  }

  /** A session on the native data path, both sockets connected at once; undefined when not possible. */
  #openNative(request: RemoteSessionRequest, endpointStats: EndpointStats): HostedSession | undefined {
    if (!this.#nativeWanted) return undefined;
    const native = (this.#native ??= NativeSessions.create(this.#nativeHandlers(), this.#options.maxSessions, this.stats));
    if (native === undefined) return undefined;
    const session = new HostedSession(request.key, request, endpointStats, undefined, undefined);
    const send = native.open(session, request.local, request.client, { address: request.endpoint.ip, port: request.endpoint.port });
    if (send === undefined) return undefined;
    session.pending = undefined;
    session.toEndpoint = send;
    return session;
  }

  /** Made with the port's native group (most ports never have one). */
  #nativeHandlers(): NativeSessionHandlers<HostedSession> {
    return {
      upstreamError: (session, code) => this.#fail(session, true, code),
      replyError: (session, code) => this.#fail(session, false, code),
      stray: (session, msg, address, port) => this.#options.onStray(session.request.listenIndex, msg, address, port),
    };
  }

  /** A session on dgram sockets, which connect over the next few ticks. */
  #openDgram(request: RemoteSessionRequest, endpointStats: EndpointStats): HostedSession {
    const ep = request.endpoint;
    const upstream = dgram.createSocket(ep.ip.includes(':') ? 'udp6' : 'udp4');
    const reply = dgram.createSocket({ type: request.local.family, reuseAddr: true });
    const session = new HostedSession(request.key, request, endpointStats, upstream, reply);

    upstream.on('message', (msg: Buffer) => this.#toClient(session, msg));
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#fail(session, true, err.code));
    upstream.connect(ep.port, ep.ip, (err?: NodeJS.ErrnoException) => {
      if (err !== undefined && err !== null) return this.#fail(session, true, err.code);
      session.toEndpoint = connectedSender(upstream);
      receiveDirect(upstream, (msg) => this.#toClient(session, msg));
      this.#flush(session);
    });

    // Before connect() completes this socket may receive any client's datagram (it is the newest
    // one bound to the address), and those stay queued after: they belong to the listening socket.
    const onDatagram = (msg: Buffer, rinfo: { address: string; port: number }): void => {
      if (session.toClient !== undefined && rinfo.port === request.client.port && rinfo.address === request.client.address) this.#toEndpoint(session, msg);
      else this.#options.onStray(request.listenIndex, msg, rinfo.address, rinfo.port);
    };
    reply.on('message', onDatagram);
    reply.on('error', (err: NodeJS.ErrnoException) => this.#fail(session, false, err.code));
    reply.bind({ address: request.local.address, port: request.local.port }, () => {
      if (session.closed) return;
      reply.connect(request.client.port, request.client.address, (err?: NodeJS.ErrnoException) => {
        if (err !== undefined && err !== null) return this.#fail(session, false, err.code);
        session.toClient = connectedSender(reply);
        receiveDirect(reply, onDatagram);
        this.#flush(session);
      });
    });
    return session;
  }

  /** A datagram of a session here that reached the agent's listening socket. */
  forward(key: string, msg: Buffer): void {
    const session = this.#table.get(key);
    if (session !== undefined) this.#toEndpoint(session, msg);
  }

  /** Closes every session (a UDP port's close() ends its sessions). */
  close(): void {
    for (const session of this.#table.clear()) this.#close(session, undefined);
  }

  #toEndpoint(session: HostedSession, msg: Buffer): void {
    if (session.closed) return;
    this.#table.touch(session);
    if (sendOrQueue(session, msg)) this.stats.bytesIn += msg.length;
  }

  #toClient(session: HostedSession, msg: Buffer): void {
    if (session.closed) return;
    this.stats.bytesOut += msg.length;
    this.#table.touch(session);
    // Nothing reaches the endpoint before both sockets are connected (#flush), so neither do replies.
    session.toClient?.(msg);
  }

  /** Sends what waited, once the endpoint and the client are both connected. */
  #flush(session: HostedSession): void {
    const send = session.toEndpoint;
    if (session.closed || send === undefined || session.toClient === undefined) return;
    const pending = session.pending;
    session.pending = undefined;
    for (const msg of pending ?? []) send(msg);
  }

  #fail(session: HostedSession, upstreamFailed: boolean, code: string | undefined): void {
    if (session.closed) return;
    // Out of descriptors or memory here is not the endpoint's failure: no dial failure, no back-off.
    const local = isLocalResourceError(code);
    if (local) this.stats.localResourceErrors++;
    const endpointFailed = upstreamFailed && !local;
    if (endpointFailed) {
      this.stats.dialFailures++;
      session.endpointStats.dialFailures++;
    }
    this.#table.delete(session);
    this.#close(session, endpointFailed ? session.request.endpoint.key : undefined);
  }

  readonly #onRemoved = (session: HostedSession, reason: RemovalReason): void => {
    if (reason === 'evicted') this.stats.udpEvictions++;
    this.#close(session, undefined);
  };

  #close(session: HostedSession, failedEndpoint: string | undefined): void {
    if (!endSession(this.stats, session)) return;
    this.#native?.close(session);
    this.#options.budget?.release(DESCRIPTORS_PER_UDP_SESSION);
    this.#options.onClosed(session.key, failedEndpoint);
  }
}
