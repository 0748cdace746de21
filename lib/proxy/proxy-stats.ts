import type { ConnectionCounts } from '../balancer/load-balancer.js';
import type { ProxySocketKey } from '../model/service-port-name.js';

/** Counters of one endpoint of a service port, for the status view. Plain fields, bumped per connection. */
export interface EndpointStats {
  /** TCP connections to it being proxied now, or live UDP sessions with it. */
  active: number;
  /** TCP connections established to it, or UDP sessions created with it. */
  total: number;
  /** Dial attempts to it that failed (TCP), or upstream errors of its sessions (UDP). */
  dialFailures: number;
}

/** Where the endpoints in rotation are read: the balancer, under one socket's key. */
export interface EndpointRotation {
  endpoints(spn: ProxySocketKey): readonly { readonly key: string }[];
}

export interface ProxyStatsOptions {
  /**
   * The endpoints currently in rotation (the balancer's): an idle entry of an endpoint no longer
   * among them is dropped when the map next grows. Without it (or `rotation`), only idle entries are dropped.
   */
  readonly liveEndpoints?: () => readonly { readonly key: string }[];
  /**
   * The same from `rotation.endpoints(spn)`: what a proxy socket gives, as a closure and its context
   * for each of 10,000 ports cost about 90 bytes more each.
   */
  readonly rotation?: EndpointRotation;
  readonly spn?: ProxySocketKey;
}

/**
 * The endpoint map is pruned only when it reaches this many entries, and then only once it has
 * doubled again, so each new entry costs O(1) amortized however many endpoints a port has.
 */
const MIN_PRUNE_AT = 16;

/** Counters of one service port's data path. Plain fields: they are bumped on the per-connection path. */
export class ProxyStats implements ConnectionCounts {
  /** TCP connections currently proxied, or live UDP sessions. */
  active = 0;
  /** TCP connections accepted, or UDP sessions created, since start. */
  total = 0;
  /** Bytes from clients to endpoints. */
  bytesIn = 0;
  /** Bytes from endpoints to clients. */
  bytesOut = 0;
  /** Connections (or datagrams) turned away because the port had no endpoint. */
  noEndpointRejections = 0;
  /** Dial attempts that failed (refused, timed out, unreachable). */
  dialFailures = 0;
  /** Dial attempts after the first for one connection. */
  dialRetries = 0;
  /** Connections given up after every dial attempt failed. */
  dialGiveUps = 0;
  /** UDP sessions closed to stay within --udp-max-sessions. */
  udpEvictions = 0;
  /**
   * Connections refused or closed, dials and UDP sessions abandoned, and accept errors, because
   * this host ran out of descriptors, buffers or memory (or reached the descriptor budget): never
   * an endpoint's fault, so never a dial failure and never a back-off.
   */
  localResourceErrors = 0;
  /** TCP connections closed by the idle timeout (--tcp-idle-timeout or the Service's annotation). */
  tcpIdleTimeouts = 0;
  /** TCP connections closed for the Service's max connection age. */
  maxAgeCloses = 0;
  #endpoints: Map<string, EndpointStats> | undefined;

  readonly #liveEndpoints: (() => readonly { readonly key: string }[]) | undefined;
  readonly #rotation: EndpointRotation | undefined;
  readonly #spn: ProxySocketKey | undefined;
  #pruneAt = MIN_PRUNE_AT;

  constructor(options: ProxyStatsOptions = {}) {
    this.#liveEndpoints = options.liveEndpoints;
    this.#rotation = options.spn !== undefined ? options.rotation : undefined;
    this.#spn = options.spn;
  }

  /**
   * Per endpoint key (`ip:port`, `[ip]:port` for IPv6). Bounded: when it grows, entries with no
   * active connection whose endpoint left the rotation are dropped (see endpoint()). Made on first
   * use: an empty Map is about 180 bytes, and most of 10,000 ports have no connection yet.
   */
  get endpoints(): Map<string, EndpointStats> {
    return (this.#endpoints ??= new Map());
  }

  /** One endpoint's counters if it has any, without making the map (ConnectionCounts: lc, sed and nq read them). */
  get(key: string): EndpointStats | undefined {
    return this.#endpoints?.get(key);
  }

  /**
   * The counters of one endpoint, created on first use. Callers keep the returned object for the
   * life of the connection or session, so this is the one Map lookup a connection costs; an entry
   * is only ever dropped while its active count is 0, so nobody holds a dropped one.
   */
  endpoint(key: string): EndpointStats {
    const endpoints = this.endpoints;
    let es = endpoints.get(key);
    if (es === undefined) {
      if (endpoints.size >= this.#pruneAt) this.#prune();
      es = { active: 0, total: 0, dialFailures: 0 };
      endpoints.set(key, es);
    }
    return es;
  }

  #prune(): void {
    const live = new Set<string>();
    const rotation = this.#rotation;
    const inRotation = rotation !== undefined ? rotation.endpoints(this.#spn!) : this.#liveEndpoints?.();
    if (inRotation !== undefined) for (const e of inRotation) live.add(e.key);
    for (const [key, es] of this.endpoints) if (es.active === 0 && !live.has(key)) this.endpoints.delete(key);
    this.#pruneAt = Math.max(MIN_PRUNE_AT, 2 * this.endpoints.size);
  }
}
