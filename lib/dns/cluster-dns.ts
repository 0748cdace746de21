import type { Config } from '../config/config.js';
import { parseAddress } from '../net/parse-address.js';
import { DnsResponder } from './dns-responder.js';
import { DnsServer } from './dns-server.js';
import { DnsZone } from './dns-zone.js';
import { UpstreamForwarder } from './upstream-forwarder.js';

export type ClusterDnsConfig = Pick<Config, 'dnsBindAddress' | 'clusterDomain' | 'dnsTtlMs' | 'dnsUpstream' | 'resolvConf'>;

export interface ClusterDnsOptions {
  readonly config: ClusterDnsConfig;
  /** The upstream name servers' port (53; other values are for tests). */
  readonly upstreamPort?: number;
}

/**
 * The DNS server of --dns-bind-address with its parts: the zone (a ServiceSourceHandler fed with
 * every Service and EndpointSlice), the forwarder for other names, and the UDP/TCP listener.
 */
export class ClusterDns {
  readonly zone: DnsZone;
  readonly server: DnsServer;
  readonly #upstream: UpstreamForwarder | undefined;

  constructor(options: ClusterDnsOptions) {
    const { config } = options;
    this.zone = new DnsZone({ zone: config.clusterDomain, ttlSeconds: config.dnsTtlMs / 1000 });
    const self = parseAddress(config.dnsBindAddress, '--dns-bind-address');
    this.#upstream =
      config.dnsUpstream === 'forward' ? new UpstreamForwarder({ resolvConf: config.resolvConf, self, ...(options.upstreamPort !== undefined ? { port: options.upstreamPort } : {}) }) : undefined;
    this.server = new DnsServer({ address: config.dnsBindAddress, responder: new DnsResponder({ zone: this.zone, upstream: this.#upstream }) });
  }

  start(): Promise<void> {
    return this.server.start();
  }

  /** Idempotent. */
  async close(): Promise<void> {
    this.#upstream?.close();
    await this.server.close();
  }

  /** Idempotent. */
  destroy(): void {
    this.#upstream?.close();
    this.server.destroy();
  }
}
