import type { Endpoint } from '../model/endpoint.js';
import type { AffinityType } from '../model/service.js';
import type { ServicePortName } from '../model/service-port-name.js';

export interface AffinityPolicy {
  readonly type: AffinityType;
  /** How long a client stays pinned after its last connection. */
  readonly timeoutSeconds: number;
}

/**
 * Picks an endpoint for each new connection (or UDP client) of a service port.
 * Implementations keep per-ServicePortName state; all calls are synchronous and cheap, since
 * nextEndpoint sits on the per-connection path.
 */
export interface LoadBalancer {
  /** Registers a service port or updates its affinity policy (type and timeout); endpoints already known are kept. */
  newService(spn: ServicePortName, affinity: AffinityPolicy): void;
  /** Replaces the endpoints of a service port. An unchanged set (in any order) keeps position and affinity. */
  updateEndpoints(spn: ServicePortName, endpoints: readonly Endpoint[]): void;
  /** Forgets a service port: its endpoints and its affinity entries. */
  deleteService(spn: ServicePortName): void;
  /**
   * The endpoint for a new connection from clientIP, or undefined when the port is unknown or has
   * no endpoints. reset=true bypasses affinity (the previous pick failed) and re-pins the client.
   */
  nextEndpoint(spn: ServicePortName, clientIP: string, reset: boolean): Endpoint | undefined;
  /** The current endpoints of a service port (empty when unknown). */
  endpoints(spn: ServicePortName): readonly Endpoint[];
  /** Drops affinity entries idle for at least their timeout, so memory stays bounded. */
  cleanupStaleStickySessions(): void;
}
