import type { Endpoint } from '../model/endpoint.js';
import type { SchedulerName } from '../model/scheduler-annotation.js';
import type { AffinityType } from '../model/service.js';
import type { ProxySocketKey } from '../model/service-port-name.js';

export interface AffinityPolicy {
  readonly type: AffinityType;
  /** How long a client stays pinned after its last connection. */
  readonly timeoutSeconds: number;
}

/** A service port's scheduler and the weights of its endpoints, by IP address or Pod name (others weigh 1). */
export interface SchedulingPolicy {
  readonly scheduler: SchedulerName;
  readonly weights: Readonly<Record<string, number>>;
}

/** Round robin with equal weights: the default. */
export const DEFAULT_SCHEDULING: SchedulingPolicy = Object.freeze({ scheduler: 'rr', weights: Object.freeze({}) });

/** Per endpoint key, the connections (TCP) or sessions (UDP) a proxy socket has open to it now (a Map will do). */
export interface ConnectionCounts {
  get(key: string): { readonly active: number } | undefined;
}

/**
 * Picks an endpoint for each new connection (or UDP client) of a service port.
 * Implementations keep state per ProxySocketKey; all calls are synchronous and cheap, since
 * nextEndpoint sits on the per-connection path.
 */
export interface LoadBalancer {
  /**
   * Registers a service port or updates its affinity policy (type and timeout) and its scheduling
   * (DEFAULT_SCHEDULING when omitted); endpoints already known are kept.
   */
  newService(spn: ProxySocketKey, affinity: AffinityPolicy, scheduling?: SchedulingPolicy): void;
  /** Replaces the endpoints of a service port. An unchanged set (in any order) keeps position and affinity. */
  updateEndpoints(spn: ProxySocketKey, endpoints: readonly Endpoint[]): void;
  /** Forgets a service port: its endpoints and its affinity entries. */
  deleteService(spn: ProxySocketKey): void;
  /**
   * The endpoint for a new connection from clientIP, or undefined when the port is unknown or has
   * no endpoints. reset=true bypasses affinity (the previous pick failed) and re-pins the client.
   * avoid: endpoint keys just found backed off; one outside it is returned when there is one.
   */
  nextEndpoint(spn: ProxySocketKey, clientIP: string, reset: boolean, avoid?: ReadonlySet<string>): Endpoint | undefined;
  /** The current endpoints of a service port (empty when unknown). */
  endpoints(spn: ProxySocketKey): readonly Endpoint[];
  /**
   * Whether nextEndpoint reads clientIP for this port (ClientIP affinity, or a scheduler that
   * hashes the client's address). Where it does not, the data path need not ask the kernel for
   * the address of each new connection. An implementation without it is assumed to read it.
   */
  needsClientIP?(spn: ProxySocketKey): boolean;
  /**
   * The proxy socket of a service port hands over its live per-endpoint counts (its stats), so
   * that lc, sed and nq see the connections open now. The last call for a port wins.
   */
  trackConnections?(spn: ProxySocketKey, counts: ConnectionCounts): void;
  /** Drops affinity entries idle for at least their timeout, so memory stays bounded. */
  cleanupStaleStickySessions(): void;
}
