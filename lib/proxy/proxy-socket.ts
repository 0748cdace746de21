import type { TcpConnectionPolicy } from './tcp/connection-policy.js';
import type { Protocol } from '../model/service.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { ProxyStats } from './proxy-stats.js';

export interface ListenAddress {
  readonly host: string;
  /** 0 lets the kernel choose; addresses() tells the port it chose. */
  readonly port: number;
  /** `::` for IPv6 only (IPV6_V6ONLY), beside an IPv4 socket on `0.0.0.0` at the same port. */
  readonly ipv6Only?: boolean;
}

/**
 * The listening side of one service port: one or more listeners (one per address) that hand each
 * connection or UDP client to an endpoint picked by the LoadBalancer.
 */
export interface ProxySocket {
  readonly spn: ProxySocketKey;
  readonly protocol: Protocol;
  readonly stats: ProxyStats;
  /** Opens every listener. Rejects with PortConflictError or ListenError (and opens none) on failure. */
  start(): Promise<void>;
  /** The bound addresses, with the real port when 0 was asked. Empty before start(). */
  addresses(): ListenAddress[];
  /**
   * Stops listening. TCP keeps established connections until they end by themselves (as the legacy
   * proxier did); UDP closes its sessions. Idempotent.
   */
  close(): Promise<void>;
  /** Stops listening and closes every connection and session now. Idempotent. */
  destroy(): void;
  /** TCP: closes connections with no byte either way for this long (0 = never), established ones too. */
  setIdleTimeout?(timeoutMs: number): void;
  /** TCP: the Service's PROXY protocol header and max connection age for the port's connections. */
  setConnectionPolicy?(policy: TcpConnectionPolicy): void;
}
