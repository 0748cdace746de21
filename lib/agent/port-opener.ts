import type { LoadBalancer } from '../balancer/load-balancer.js';
import { PortConflictError } from '../errors.js';
import { formatHostPort } from '../net/host-port.js';
import { logger } from '../log.js';
import type { DescriptorBudget } from '../proxy/descriptor-budget.js';
import type { EndpointBackoff } from '../proxy/endpoint-backoff.js';
import type { PortAllocator } from '../proxy/port-allocator.js';
import type { ProxySocket } from '../proxy/proxy-socket.js';
import type { DialVia } from './dial-via.js';
import { holdNodePort, needsNodePort } from './node-port-hold.js';
import type { ProxiedPort } from './proxied-port.js';
import type { ProxySocketFactory } from '../proxy/proxy-socket-factory.js';
import { tcpIdleTimeoutOf, tcpPolicyOf } from './service-port-policies.js';

const log = logger('agent');

/** Proxy ports drawn for one listener before giving up on ports other processes hold. */
const MAX_CONFLICT_RETRIES = 8;

export interface PortOpenerOptions {
  /** Rules modes: listeners get a proxy port from the allocator, and node ports are held. */
  readonly redirect: boolean;
  readonly allocator: PortAllocator;
  readonly sockets: ProxySocketFactory;
  readonly balancer: LoadBalancer;
  readonly backoff: EndpointBackoff;
  readonly budget: DescriptorBudget | undefined;
  readonly dialVia: DialVia | undefined;
  readonly udpTimeoutMs: number;
  readonly udpMaxSessions: number;
  /** --tcp-idle-timeout; a Service's annotation overrides it. */
  readonly tcpIdleTimeoutMs: number | undefined;
}

/**
 * Opens and closes the sockets of proxied ports: the listener (at a proxy port drawn from the
 * allocator in the rules modes, retried past ports another process holds), then the NodePort hold.
 * A failure affects only its port, is logged once per distinct message, and is retried at every
 * sync. Closed listeners whose TCP connections are still finishing are kept, so destroy() reaches them.
 */
export class PortOpener {
  readonly #o: PortOpenerOptions;
  readonly #retired = new Set<ProxySocket>();

  constructor(options: PortOpenerOptions) {
    this.#o = options;
  }

  async open(st: ProxiedPort): Promise<void> {
    const o = this.#o;
    // none mode: a port without endpoints is not listened on, so the kernel refuses its clients
    // (an earlier failure to open is then moot: it is tried again when endpoints come).
    if (!o.redirect && o.balancer.endpoints(st.key).length === 0) {
      st.error = undefined;
      return;
    }
    // Rules modes draw a proxy port per listener; a port another process holds is skipped.
    for (let attempt = 0; ; attempt++) {
      let listen = st.listen;
      let allocated = 0;
      if (o.redirect) {
        try {
          allocated = o.allocator.allocateNext();
        } catch (err) {
          this.#failedToOpen(st, err as Error);
          return;
        }
        listen = st.listen.map((a) => ({ host: a.host, port: allocated }));
      }
      const socket = o.sockets.create({
        spn: st.key,
        protocol: st.port.protocol as 'TCP' | 'UDP',
        listen,
        affinity: st.service.sessionAffinity,
        balancer: o.balancer,
        backoff: o.backoff,
        udpTimeoutMs: o.udpTimeoutMs,
        udpMaxSessions: o.udpMaxSessions,
        tcpIdleTimeoutMs: tcpIdleTimeoutOf(st.service, o.tcpIdleTimeoutMs),
        tcpPolicy: tcpPolicyOf(st.service, st.port, o.redirect),
        budget: o.budget,
        ...(o.dialVia ? { connector: o.dialVia.connector } : {}),
      });
      try {
        await socket.start();
      } catch (err) {
        if (allocated !== 0 && err instanceof PortConflictError && attempt < MAX_CONFLICT_RETRIES) continue; // keep that port marked used
        o.allocator.release(allocated);
        this.#failedToOpen(st, err as Error, listen.map((a) => formatHostPort(a.host, a.port)).join(','));
        return;
      }
      st.socket = socket;
      st.proxyPort = o.redirect ? (socket.addresses()[0]?.port ?? 0) : 0;
      // Asking the kernel for the bound addresses costs a system call per listener: only when logged.
      if (log.isInfoEnabled()) {
        const fields = {
          service: st.spn,
          protocol: st.port.protocol,
          addresses: socket
            .addresses()
            .map((a) => formatHostPort(a.host, a.port))
            .join(','),
        };
        log.info(st.error ? 'listener recovered' : 'opened listener', fields);
      }
      st.error = undefined;
      break;
    }
    if (needsNodePort(st, o.redirect)) await holdNodePort(st);
  }

  /** A socket whose listener is open but whose NodePort is not held (it failed before): tried again. */
  /** Whether retryNodePort() has anything to do for the port. */
  needsNodePortRetry(st: ProxiedPort): boolean {
    return st.socket !== undefined && !st.claim && needsNodePort(st, this.#o.redirect);
  }

  async retryNodePort(st: ProxiedPort): Promise<void> {
    if (this.needsNodePortRetry(st)) await holdNodePort(st);
  }

  /** A Service change that keeps the listener: its connections' settings follow the new spec. */
  update(st: ProxiedPort): void {
    st.socket?.setIdleTimeout?.(tcpIdleTimeoutOf(st.service, this.#o.tcpIdleTimeoutMs));
    st.socket?.setConnectionPolicy?.(tcpPolicyOf(st.service, st.port, this.#o.redirect));
  }

  /** Closes the listener and the node-port hold, and gives the proxy port back. */
  async close(st: ProxiedPort): Promise<void> {
    st.claim?.close();
    if (!st.socket) return;
    this.#o.allocator.release(st.proxyPort);
    await this.#retire(st.socket);
    log.info('closed listener', { service: st.spn, protocol: st.port.protocol });
  }

  /** none mode: closes the listener of a port that lost its last endpoint (open() reopens it when they come back). */
  /** Whether the port has a listener but no endpoint left (none mode closes it). */
  isUnserved(st: ProxiedPort): boolean {
    return st.socket !== undefined && this.#o.balancer.endpoints(st.key).length === 0;
  }

  async closeUnserved(st: ProxiedPort): Promise<void> {
    const socket = st.socket;
    if (!socket || !this.isUnserved(st)) return;
    st.socket = undefined;
    await this.#retire(socket);
    log.info('closed listener: no endpoints', { service: st.key, protocol: st.port.protocol });
  }

  /** Connections still open on closed listeners. */
  retiredConnections(): number {
    let n = 0;
    for (const socket of this.#retired) n += socket.stats.active;
    return n;
  }

  /** Forgets closed listeners whose last connection has finished. */
  forgetFinished(): void {
    for (const socket of this.#retired) if (socket.stats.active === 0) this.#retired.delete(socket);
  }

  /** Closes every connection left on closed listeners. */
  destroy(): void {
    for (const socket of this.#retired) socket.destroy();
    this.#retired.clear();
  }

  async #retire(socket: ProxySocket): Promise<void> {
    await socket.close();
    if (socket.stats.active > 0) this.#retired.add(socket);
  }

  #failedToOpen(st: ProxiedPort, err: Error, addresses?: string): void {
    // Only this service port is affected; it is retried at every sync until it opens.
    if (!st.error || st.error.message !== err.message) {
      log.error('cannot open listener', { service: st.spn, protocol: st.port.protocol, addresses, error: err.message });
    }
    st.error = err;
  }
}
