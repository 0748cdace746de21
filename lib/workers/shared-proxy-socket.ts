import type { ServicePortName } from '../model/service-port-name.js';
import type { ListenAddress, ProxySocket } from '../proxy/proxy-socket.js';
import type { ProxyStats } from '../proxy/proxy-stats.js';
import type { TcpProxySocket } from '../proxy/tcp/tcp-proxy-socket.js';
import { sumStats } from './stats-snapshot.js';
import type { StatsSnapshot } from './stats-snapshot.js';

/** What a SharedProxySocket needs of the processes it shares its listeners with. */
export interface ListenerSharing {
  /** Gives the listening handles to every worker; resolves once they accept on them too. */
  share(id: number, spn: ServicePortName, addresses: readonly ListenAddress[], handles: readonly object[]): Promise<void>;
  /** Makes every worker stop accepting on them; resolves once none does (the port is free). */
  unshare(id: number): Promise<void>;
  /** Makes every worker reset the connections it accepted on them. */
  destroyShared(id: number): void;
  /** The workers' last counters of socket `id`, and those of workers that are gone. */
  statsOf(id: number): { readonly live: readonly StatsSnapshot[]; readonly gone: readonly StatsSnapshot[] };
}

/**
 * A TCP service port served by several processes: this one opens the listeners and accepts on
 * them, and so does every worker it shares them with; the kernel hands each connection to one of
 * them. Stats are the sum over all of them (as of the last refresh for the workers).
 */
export class SharedProxySocket implements ProxySocket {
  readonly spn: ServicePortName;
  readonly protocol = 'TCP' as const;
  readonly #local: TcpProxySocket;
  readonly #sharing: ListenerSharing;
  readonly #id: number;
  #shared = false;

  constructor(local: TcpProxySocket, sharing: ListenerSharing, id: number) {
    this.spn = local.spn;
    this.#local = local;
    this.#sharing = sharing;
    this.#id = id;
  }

  get stats(): ProxyStats {
    const { live, gone } = this.#sharing.statsOf(this.#id);
    if (live.length === 0 && gone.length === 0) return this.#local.stats;
    return sumStats(this.#local.stats, live, gone);
  }

  async start(): Promise<void> {
    await this.#local.start();
    this.#shared = true;
    await this.#sharing.share(this.#id, this.spn, this.#local.addresses(), this.#local.listeningHandles());
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

  destroy(): void {
    this.#local.destroy();
    this.#shared = false;
    this.#sharing.destroyShared(this.#id);
  }
}
