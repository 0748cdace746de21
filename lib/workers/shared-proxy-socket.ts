import type { Protocol } from '../model/service.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { ListenAddress, ProxySocket } from '../proxy/proxy-socket.js';
import type { ProxyStats } from '../proxy/proxy-stats.js';
import type { TcpConnectionPolicy } from '../proxy/tcp/connection-policy.js';
import { sumStats } from './stats-snapshot.js';
import type { StatsSnapshot } from './stats-snapshot.js';

/**
 * What the workers get of a shared socket: a TCP port's listening handles (or, with `handles`
 * undefined, the bound addresses for each worker to bind itself with SO_REUSEPORT), or a UDP port's
 * session settings.
 */
export type ShareSpec =
  | {
      readonly kind: 'tcp';
      readonly spn: ProxySocketKey;
      readonly addresses: readonly ListenAddress[];
      readonly handles: readonly object[] | undefined;
      readonly idleTimeoutMs: number;
      readonly policy: TcpConnectionPolicy;
    }
  | { readonly kind: 'udp'; readonly spn: ProxySocketKey; readonly idleTimeoutMs: number; readonly maxSessions: number };

/** What a SharedProxySocket needs of the processes it shares its port with. */
export interface ListenerSharing {
  /** Gives the port to every worker; resolves once they serve it too. */
  share(id: number, spec: ShareSpec): Promise<void>;
  /** Makes every worker stop accepting on them; resolves once none does (the port is free). */
  unshare(id: number): Promise<void>;
  /** A socket that failed to open and was never shared: drop what is kept for it. */
  forget(id: number): void;
  /** Makes every worker reset the connections it accepted on them. */
  destroyShared(id: number): void;
  /** A TCP port's idle timeout changed: every worker applies it to its connections of the port. */
  setIdleTimeout(id: number, timeoutMs: number): void;
  /** A TCP port's connection policy changed: every worker applies it to its connections of the port. */
  setConnectionPolicy(id: number, policy: TcpConnectionPolicy): void;
  /** The workers' last counters of socket `id`, and those of workers that are gone. */
  statsOf(id: number): { readonly live: readonly StatsSnapshot[]; readonly gone: readonly StatsSnapshot[] };
}

/**
 * A service port served by several processes. TCP: this one opens the listeners and accepts on
 * them, and so does every worker it shares them with (or that binds the same port with
 * SO_REUSEPORT); the kernel hands each connection to one of them. UDP: this one receives every new client and places some sessions in workers (see
 * UdpSessionPlacement). Stats are the sum over all of them (as of the last refresh for the workers).
 */
export class SharedProxySocket implements ProxySocket {
  readonly spn: ProxySocketKey;
  readonly protocol: Protocol;
  readonly #local: ProxySocket;
  readonly #sharing: ListenerSharing;
  readonly #id: number;
  readonly #spec: () => ShareSpec;
  #shared = false;

  /** spec: what to give the workers once `local` is open. */
  constructor(local: ProxySocket, sharing: ListenerSharing, id: number, spec: () => ShareSpec) {
    this.spn = local.spn;
    this.protocol = local.protocol;
    this.#local = local;
    this.#sharing = sharing;
    this.#id = id;
    this.#spec = spec;
  }

  get stats(): ProxyStats {
    const { live, gone } = this.#sharing.statsOf(this.#id);
    if (live.length === 0 && gone.length === 0) return this.#local.stats;
    return sumStats(this.#local.stats, live, gone);
  }

  /**
   * Opens the port here and hands it to the workers without waiting for them: this process serves
   * it meanwhile, and the workers join in the order the ports were opened (a sync of thousands of
   * ports does not wait for a round trip per port).
   */
  async start(): Promise<void> {
    try {
      await this.#local.start();
    } catch (err) {
      // The agent drops a socket that failed to open (it retries with a new one).
      this.#sharing.forget(this.#id);
      throw err;
    }
    this.#shared = true;
    void this.#sharing.share(this.#id, this.#spec());
  }

  addresses(): ListenAddress[] {
    return this.#local.addresses();
  }

  async close(): Promise<void> {
    await this.#local.close();
    if (!this.#shared) return;
    this.#shared = false;
    await this.#sharing.unshare(this.#id);
  }

  setIdleTimeout(timeoutMs: number): void {
    if (this.#local.setIdleTimeout === undefined) return;
    this.#local.setIdleTimeout(timeoutMs);
    this.#sharing.setIdleTimeout(this.#id, timeoutMs);
  }

  setConnectionPolicy(policy: TcpConnectionPolicy): void {
    if (this.#local.setConnectionPolicy === undefined) return;
    this.#local.setConnectionPolicy(policy);
    this.#sharing.setConnectionPolicy(this.#id, policy);
  }

  destroy(): void {
    this.#local.destroy();
    this.#shared = false;
    this.#sharing.destroyShared(this.#id);
  }
}
