import type { LoadBalancer } from '../balancer/load-balancer.js';
import { SchedulingBalancer } from '../balancer/scheduling-balancer.js';
import { WorkerStartError } from '../errors.js';
import { logger } from '../log.js';
import type { LogFormat, LogLevel } from '../log.js';
import type { ListenAddress, ProxySocket } from '../proxy/proxy-socket.js';
import { LocalProxySockets } from '../proxy/proxy-socket-factory.js';
import type { ProxySocketFactory, ProxySocketRequest } from '../proxy/proxy-socket-factory.js';
import { samePolicy } from '../proxy/tcp/connection-policy.js';
import type { TcpConnectionPolicy } from '../proxy/tcp/connection-policy.js';
import { TcpProxySocket } from '../proxy/tcp/tcp-proxy-socket.js';
import { UdpProxySocket } from '../proxy/udp/udp-proxy-socket.js';
import type { RemoteSessionRequest, UdpSessionPlacement } from '../proxy/udp/udp-session-placement.js';
import { ReplicatedBalancer } from './replicated-balancer.js';
import { SharedProxySocket } from './shared-proxy-socket.js';
import type { ListenerSharing, ShareSpec } from './shared-proxy-socket.js';
import type { StatsSnapshot } from './stats-snapshot.js';
import { resolveTcpListenerMode } from './tcp-listener-mode.js';
import type { TcpListenerMode, TcpListenerModeOption } from './tcp-listener-mode.js';
import { WorkerProcess } from './worker-process.js';
import type { BalancerOp, FromWorker, ToWorker } from './worker-protocol.js';

const READY_TIMEOUT_MS = 30_000;
/** A worker that does not answer within this long is skipped (its last counters stand). */
const REPLY_TIMEOUT_MS = 5_000;

export interface WorkerPoolOptions {
  /** Worker processes besides this one, which serves connections too. */
  readonly workers: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Wait before a worker that exited is started again. */
  readonly restartDelayMs?: number;
  /** How workers accept on TCP ports (see TcpListenerMode); default `auto`. */
  readonly tcpListeners?: TcpListenerModeOption;
}

const log = logger('workers');

/**
 * The data path on several cores: worker processes that accept on the same TCP ports as this one
 * and proxy with replicas of this process's balancer. Where Node (>= 22.12) or the native TCP
 * addon binds with SO_REUSEPORT every process binds each port itself (this one first, so port 0 and port ranges are decided here)
 * and has an accept queue of its own; elsewhere the workers accept on this process's listening
 * handles, one queue for all. Either way the kernel spreads connections over the processes.
 *
 * A worker that dies takes with it the connections it accepted; with SO_REUSEPORT also those still
 * in its accept queue (the kernel resets them, unless net.ipv4.tcp_migrate_req moves them to
 * another process's queue). From its exit on, new connections go to the other processes only, until
 * the worker is started again and binds the ports anew.
 *
 * UDP: this process receives every new client on the listening socket and picks its endpoint,
 * then places the session here or, in turn, in a worker, which opens a socket connected to the
 * client on the service's address: the kernel then delivers that client's datagrams to it. So a
 * client keeps one session and affinity is exact. TCP ports with ClientIP affinity stay in this
 * process (the affinity table is per process). Counters are summed over the processes when read (refreshStats() fetches the workers'). A worker
 * that exits is started again after restartDelayMs and given the current state; its counters up to
 * its last report are kept.
 */
export class WorkerPool implements ProxySocketFactory, ListenerSharing {
  readonly affinityNeedsNewListener = true;
  readonly balancer: ReplicatedBalancer;
  readonly #options: WorkerPoolOptions;
  readonly #local = new LocalProxySockets();
  readonly #workers: Array<WorkerProcess | undefined>;
  readonly #shared = new Map<number, ShareSpec>();
  /** UDP sockets that place sessions in workers, by shared id. */
  readonly #udp = new Map<number, UdpProxySocket>();
  /** Round robin over this process and the ready workers for new UDP sessions. */
  #nextPlace = 0;
  /** Counters of workers that exited, per shared socket. */
  readonly #gone = new Map<number, StatsSnapshot[]>();
  readonly #restarts = new Set<NodeJS.Timeout>();
  /** Per worker: the last port whose listening handles are being handed over (see #shareWith). */
  readonly #handleTurns = new WeakMap<WorkerProcess, Promise<void>>();
  /** Decided in start(): a socket created before then shares its handles. */
  #tcpMode: TcpListenerMode = 'shared-handle';
  #ops: BalancerOp[] = [];
  #flushQueued = false;
  #nextId = 1;
  #seq = 1;
  #closed = false;

  constructor(options: WorkerPoolOptions, balancer: LoadBalancer = new SchedulingBalancer()) {
    this.#options = options;
    this.#workers = new Array<WorkerProcess | undefined>(Math.max(0, options.workers)).fill(undefined);
    this.balancer = new ReplicatedBalancer(balancer, (op) => this.#queue(op));
  }

  /** Starts every worker; rejects if one does not come up. */
  async start(): Promise<void> {
    if (this.#workers.length > 0) this.#tcpMode = await resolveTcpListenerMode(this.#options.tcpListeners ?? 'auto');
    await Promise.all(this.#workers.map((_, i) => this.#spawn(i)));
    log.info('workers started', { workers: this.#workers.length, tcpListeners: this.#tcpMode });
  }

  /** How the workers accept on TCP ports (decided in start()). */
  get tcpListenerMode(): TcpListenerMode {
    return this.#tcpMode;
  }

  create(request: ProxySocketRequest): ProxySocket {
    if (this.#workers.length === 0) return this.#local.create(request);
    const id = this.#nextId++;
    const { spn } = request;
    if (request.protocol === 'UDP') {
      const idleTimeoutMs = request.udpTimeoutMs;
      const maxSessions = request.udpMaxSessions;
      const local = new UdpProxySocket({
        spn,
        listen: request.listen,
        balancer: request.balancer,
        backoff: request.backoff,
        idleTimeoutMs,
        maxSessions,
        placement: this.#placement(id),
        budget: request.budget,
      });
      this.#udp.set(id, local);
      return new SharedProxySocket(local, this, id, () => ({ kind: 'udp', spn, idleTimeoutMs, maxSessions }));
    }
    if (request.affinity !== 'None') return this.#local.create(request);
    const reusePort = this.#tcpMode === 'reuse-port';
    const local = new TcpProxySocket({
      spn,
      listen: request.listen,
      reusePort,
      // The listening handles go to the workers unless each binds its own.
      nativeAccept: reusePort,
      balancer: request.balancer,
      backoff: request.backoff,
      budget: request.budget,
      idleTimeoutMs: request.tcpIdleTimeoutMs,
      policy: request.tcpPolicy ?? {},
    });
    return new SharedProxySocket(local, this, id, () => ({
      kind: 'tcp',
      spn,
      // With SO_REUSEPORT the workers bind what this process bound: the ports the kernel or the
      // allocator chose, and the same ipv6Only (a reuseport group is one address and port).
      addresses: reusePort ? boundAddresses(request.listen, local.addresses()) : local.addresses(),
      handles: reusePort ? undefined : local.listeningHandles(),
      idleTimeoutMs: local.idleTimeoutMs(),
      policy: local.connectionPolicy(),
    }));
  }

  #placement(id: number): UdpSessionPlacement {
    return {
      place: (): number | undefined => {
        const ready = this.#ready();
        const n = this.#nextPlace++ % (ready.length + 1);
        return n === 0 ? undefined : (ready[n - 1] as WorkerProcess).index;
      },
      open: (host: number, request: RemoteSessionRequest, first: Buffer): void => {
        const w = this.#workers[host];
        if (w === undefined || !w.ready) {
          // Gone meanwhile: the client's next datagram starts a new session.
          this.#udp.get(id)?.remoteClosed(request.key);
          return;
        }
        this.#send(w, { t: 'udp-open', id, request, data: first.toString('base64') });
      },
      forward: (host: number, key: string, msg: Buffer): void => {
        const w = this.#workers[host];
        if (w !== undefined && w.ready) this.#send(w, { t: 'udp-forward', id, key, data: msg.toString('base64') });
      },
    };
  }

  async refreshStats(): Promise<void> {
    await Promise.all(
      this.#ready().map(async (w) => {
        const seq = this.#seq++;
        const reply = await this.#request(w, `s:${seq}`, { t: 'stats', seq });
        if (reply?.t === 'stats') w.snapshots = new Map(reply.sockets.map(([id, s]) => [id, s]));
      }),
    );
  }

  share(id: number, shared: ShareSpec): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#shared.set(id, shared);
    const ready = this.#ready();
    // Ports without handles go out in batches: the promise is the batch's, not one per port.
    if (ready.length === 1) return this.#shareWith(ready[0] as WorkerProcess, id, shared);
    return Promise.all(ready.map((w) => this.#shareWith(w, id, shared))).then(() => {});
  }

  async unshare(id: number): Promise<void> {
    this.#udp.delete(id);
    if (!this.#shared.delete(id)) return;
    this.#gone.delete(id);
    // Batched like the binds (a stop with 10,000 ports is 10,000 closes), answered per batch.
    await Promise.all(this.#ready().map((w) => this.#post(w, { t: 'close', id })));
  }

  forget(id: number): void {
    this.#udp.delete(id);
  }

  setIdleTimeout(id: number, timeoutMs: number): void {
    const shared = this.#shared.get(id);
    if (shared?.kind !== 'tcp' || shared.idleTimeoutMs === timeoutMs) return;
    // Workers that start later get it with the listening handles.
    this.#shared.set(id, { ...shared, idleTimeoutMs: timeoutMs });
    for (const w of this.#ready()) this.#send(w, { t: 'tcp-idle-timeout', id, idleTimeoutMs: timeoutMs });
  }

  setConnectionPolicy(id: number, policy: TcpConnectionPolicy): void {
    const shared = this.#shared.get(id);
    if (shared?.kind !== 'tcp' || samePolicy(shared.policy, policy)) return;
    // Workers that start later get it with the listening handles.
    this.#shared.set(id, { ...shared, policy });
    for (const w of this.#ready()) this.#send(w, { t: 'tcp-connection-policy', id, policy });
  }

  destroyShared(id: number): void {
    this.#udp.delete(id);
    this.#shared.delete(id);
    this.#gone.delete(id);
    for (const w of this.#ready()) {
      this.#send(w, { t: 'destroy', id });
      w.snapshots.delete(id);
    }
  }

  statsOf(id: number): { live: StatsSnapshot[]; gone: StatsSnapshot[] } {
    const live: StatsSnapshot[] = [];
    for (const w of this.#workers) {
      const s = w?.snapshots.get(id);
      if (s !== undefined) live.push(s);
    }
    return { live, gone: this.#gone.get(id) ?? [] };
  }

  /** Lets the workers go: each resets what it still proxies and exits. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#restarts) clearTimeout(t);
    this.#restarts.clear();
    await Promise.all(this.#workers.map((w) => w?.stop()));
  }

  /** Kills the workers now. Idempotent. */
  destroy(): void {
    this.#closed = true;
    for (const t of this.#restarts) clearTimeout(t);
    this.#restarts.clear();
    for (const w of this.#workers) w?.kill();
  }

  /** Process ids of the running workers. */
  pids(): number[] {
    return this.#ready().map((w) => w.pid);
  }

  #ready(): WorkerProcess[] {
    return this.#workers.filter((w): w is WorkerProcess => w !== undefined && w.ready);
  }

  async #spawn(index: number): Promise<void> {
    const w: WorkerProcess = new WorkerProcess(
      index,
      (m) => this.#onMessage(m),
      (code, signal) => this.#onExit(w, code, signal),
    );
    this.#workers[index] = w;
    const ready = await this.#request(w, 'ready', { t: 'init', logLevel: this.#options.logLevel, logFormat: this.#options.logFormat, worker: index + 1 }, READY_TIMEOUT_MS);
    if (ready?.t !== 'ready') {
      w.kill();
      throw new WorkerStartError(index + 1);
    }
    if (this.#closed) return;
    this.#flush();
    w.ready = true;
    this.#send(w, { t: 'balancer', ops: this.balancer.snapshot() });
    const served = new Set<Promise<void>>();
    for (const [id, shared] of this.#shared) served.add(this.#shareWith(w, id, shared));
    await Promise.all(served);
  }

  #shareWith(w: WorkerProcess, id: number, shared: ShareSpec): Promise<void> {
    if (shared.kind === 'udp') return this.#post(w, { t: 'udp-socket', id, spn: shared.spn, idleTimeoutMs: shared.idleTimeoutMs, maxSessions: shared.maxSessions });
    if (shared.handles === undefined) return this.#post(w, { t: 'bind', id, spn: shared.spn, addresses: shared.addresses, idleTimeoutMs: shared.idleTimeoutMs, policy: shared.policy });
    return this.#handOver(w, id, shared, shared.handles);
  }

  /**
   * A TCP port's listening handles, one message each, one port at a time per worker. Node sends a
   * handle only after the last one is acknowledged and, at every acknowledgement, queues again all
   * that wait behind it: 10,000 ports handed over at once kept this process busy for seconds.
   */
  async #handOver(w: WorkerProcess, id: number, shared: Extract<ShareSpec, { kind: 'tcp' }>, handles: readonly object[]): Promise<void> {
    const turn = (this.#handleTurns.get(w) ?? Promise.resolve()).then(async () => {
      if (this.#shared.get(id) !== shared || !w.ready) return undefined; // closed meanwhile
      const replied = this.#request(w, `l:${id}`, undefined);
      handles.forEach((handle, index) => {
        this.#send(w, { t: 'listen', id, spn: shared.spn, index, count: handles.length, addresses: shared.addresses, idleTimeoutMs: shared.idleTimeoutMs, policy: shared.policy }, handle);
      });
      return replied;
    });
    this.#handleTurns.set(
      w,
      turn.then(
        () => {},
        () => {},
      ),
    );
    const reply = await turn;
    if (reply?.t === 'listening' && reply.error !== undefined) {
      log.error('worker cannot accept on a listener', { worker: w.index + 1, service: shared.spn, error: reply.error });
    }
  }

  /** What a worker says unasked: its UDP sessions' news. */
  #onMessage(m: FromWorker): void {
    if (m.t === 'udp-closed') this.#udp.get(m.id)?.remoteClosed(m.key, m.failedEndpoint);
    else if (m.t === 'udp-stray') this.#udp.get(m.id)?.strayDatagram(m.listenIndex, Buffer.from(m.data, 'base64'), m.address, m.port);
  }

  #onExit(w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#workers[w.index] === w) this.#workers[w.index] = undefined;
    if (this.#closed || !w.ready) return;
    for (const socket of this.#udp.values()) socket.dropRemote(w.index);
    for (const [id, s] of w.snapshots) {
      if (!this.#shared.has(id)) continue;
      const list = this.#gone.get(id) ?? [];
      list.push(s);
      this.#gone.set(id, list);
    }
    const delayMs = this.#options.restartDelayMs ?? 1000;
    log.error('data-path worker exited; starting it again', { worker: w.index + 1, pid: w.pid, code, signal, restartInMs: delayMs });
    const timer = setTimeout(() => {
      this.#restarts.delete(timer);
      this.#spawn(w.index).catch((err: unknown) => log.error('cannot start data-path worker', { worker: w.index + 1, error: (err as Error).message }));
    }, delayMs);
    this.#restarts.add(timer);
  }

  /** Sends `message` (if any) and resolves with the reply under `key`, or undefined on timeout or exit. */
  #request(w: WorkerProcess, key: string, message: ToWorker | undefined, timeoutMs = REPLY_TIMEOUT_MS): Promise<FromWorker | undefined> {
    return w.request(key, timeoutMs, () => {
      if (message !== undefined) this.#send(w, message);
    });
  }

  #send(w: WorkerProcess, message: ToWorker, handle?: object): void {
    // Balancer changes made before this message must reach the worker before it.
    if (message.t !== 'balancer') this.#flush();
    w.send(message, handle);
  }

  /** Like #send, but the message goes out with the others of this turn (see WorkerProcess.post). */
  #post(w: WorkerProcess, message: ToWorker): Promise<void> {
    this.#flush();
    return w.post(message, true);
  }

  #queue(op: BalancerOp): void {
    this.#ops.push(op);
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    process.nextTick(() => this.#flush());
  }

  /** Balancer changes go out in one message per turn rather than one per change. */
  #flush(): void {
    this.#flushQueued = false;
    if (this.#ops.length === 0) return;
    const ops = this.#ops;
    this.#ops = [];
    for (const w of this.#ready()) void w.post({ t: 'balancer', ops }, false);
  }
}

/** The listen addresses with the ports they were bound to. */
function boundAddresses(listen: readonly ListenAddress[], bound: readonly ListenAddress[]): ListenAddress[] {
  return listen.map((a, i) => ({ ...a, port: bound[i]?.port ?? a.port }));
}
