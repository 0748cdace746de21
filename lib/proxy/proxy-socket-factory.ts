import type { LoadBalancer } from '../balancer/load-balancer.js';
import type { AffinityType } from '../model/service.js';
import type { ProxySocketKey } from '../model/service-port-name.js';
import type { DescriptorBudget } from './descriptor-budget.js';
import type { EndpointBackoff } from './endpoint-backoff.js';
import type { EndpointConnector } from './endpoint-connector.js';
import type { ListenAddress, ProxySocket } from './proxy-socket.js';
import type { TcpConnectionPolicy } from './tcp/connection-policy.js';
import { TcpProxySocket } from './tcp/tcp-proxy-socket.js';
import { UdpProxySocket } from './udp/udp-proxy-socket.js';

/** What the agent wants for one service port's listeners. */
export interface ProxySocketRequest {
  readonly spn: ProxySocketKey;
  readonly protocol: 'TCP' | 'UDP';
  readonly listen: readonly ListenAddress[];
  readonly affinity: AffinityType;
  readonly balancer: LoadBalancer;
  readonly backoff: EndpointBackoff;
  readonly udpTimeoutMs: number;
  readonly udpMaxSessions: number;
  /** TCP idle timeout of the port (the flag, or the Service's annotation); 0 = never. */
  readonly tcpIdleTimeoutMs?: number;
  /** This process's descriptor budget, shared by all its sockets; none = only the kernel limits. */
  readonly budget?: DescriptorBudget;
  /** TCP: reach endpoints through this instead of their IPs (--dial-via port-forward). */
  readonly connector?: EndpointConnector | undefined;
  /** TCP: the Service's PROXY protocol header and max connection age for the port. */
  readonly tcpPolicy?: TcpConnectionPolicy;
}

/** Where the data path runs: ProxySockets for the agent, and whatever processes serve them. */
export interface ProxySocketFactory {
  /** A change of session affinity needs a new listener: it decides which processes serve the port. */
  readonly affinityNeedsNewListener: boolean;
  start(): Promise<void>;
  create(request: ProxySocketRequest): ProxySocket;
  /** Brings every socket's stats up to date (they may be counted in other processes). */
  refreshStats(): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}

/** The whole data path in this process. */
export class LocalProxySockets implements ProxySocketFactory {
  readonly affinityNeedsNewListener = false;

  async start(): Promise<void> {}

  create(request: ProxySocketRequest): ProxySocket {
    // Options spelled out rather than spread: this runs once per service port, 10,000 times in a first sync.
    if (request.protocol === 'UDP') {
      return new UdpProxySocket({
        spn: request.spn,
        listen: request.listen,
        balancer: request.balancer,
        backoff: request.backoff,
        budget: request.budget,
        idleTimeoutMs: request.udpTimeoutMs,
        maxSessions: request.udpMaxSessions,
      });
    }
    return new TcpProxySocket({
      spn: request.spn,
      listen: request.listen,
      balancer: request.balancer,
      backoff: request.backoff,
      budget: request.budget,
      idleTimeoutMs: request.tcpIdleTimeoutMs,
      policy: request.tcpPolicy,
      connector: request.connector,
    });
  }

  async refreshStats(): Promise<void> {}

  async close(): Promise<void> {}

  destroy(): void {}
}
