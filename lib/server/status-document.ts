import { formatHostPort } from '../net/host-port.js';
import type { AgentView } from './agent-view.js';

/** One endpoint of a service port in /status. */
export interface EndpointStatusJson {
  /** `ip:port` (`[ip]:port` for IPv6). */
  readonly endpoint: string;
  /** Connections (UDP: sessions) to it now, since the listener opened, and failed dials. */
  readonly active: number;
  readonly total: number;
  readonly dialFailures: number;
  /** false: no longer among the service port's endpoints, shown while connections to it remain. */
  readonly inRotation: boolean;
}

/** The data-path counters of a service port (absent while its listener is not open). */
export interface ServicePortStatsJson {
  readonly active: number;
  readonly total: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly dialFailures: number;
  readonly dialRetries: number;
  readonly dialGiveUps: number;
  readonly noEndpointRejections: number;
  readonly udpEvictions: number;
}

export interface ServicePortStatusJson {
  /** `namespace/name:port`, with ` (internal)` or ` (external)` when the traffic policies split it. */
  readonly servicePort: string;
  readonly protocol: string;
  readonly portals: readonly string[];
  /** Bound listener addresses. */
  readonly listening: readonly string[];
  /** 0 in none mode (the listeners are the portals). */
  readonly proxyPort: number;
  readonly nodePort: number;
  readonly scheduler: string;
  readonly affinity: { readonly type: string; readonly timeoutSeconds: number };
  /** Why the listener or node port is not open; null when it is. */
  readonly error: string | null;
  readonly stats: ServicePortStatsJson | null;
  readonly endpoints: readonly EndpointStatusJson[];
}

/** The JSON of /status, which `kube-userspace-proxy status` reads. */
export interface StatusDocument {
  readonly redirectMode: string;
  readonly healthy: boolean;
  readonly reasons: readonly string[];
  readonly draining: boolean;
  /** When the last successful sync finished (RFC 3339), null before the first. */
  readonly lastUpdated: string | null;
  readonly currentTime: string;
  readonly counts: { readonly services: number; readonly servicePorts: number; readonly endpoints: number };
  /** The Kubernetes API source's health; null with manifests. */
  readonly source: { readonly connected: boolean; readonly lastSuccess: string | null; readonly lastError: string | null; readonly informerRestarts: number } | null;
  readonly servicePorts: readonly ServicePortStatusJson[];
}

/**
 * Numbers inside strings compare as numbers: 10.0.0.9 before 10.0.0.10, :80 before :443. Made at
 * the first status request: making it loads ICU's collation data, about 50 ms on the start-up path.
 */
let collator: Intl.Collator | undefined;

/** The agent's state for `kube-userspace-proxy status`, service ports and endpoints in a stable order. */
export function statusDocument(agent: AgentView, now = new Date()): StatusDocument {
  collator ??= new Intl.Collator('en', { numeric: true });
  const health = agent.health();
  const source = agent.sourceHealth();
  const servicePorts = agent.status().map((st): ServicePortStatusJson => {
    const live = new Set(st.endpoints);
    const endpoints: EndpointStatusJson[] = [];
    for (const key of live) {
      const es = st.stats?.endpoints.get(key);
      endpoints.push({ endpoint: key, active: es?.active ?? 0, total: es?.total ?? 0, dialFailures: es?.dialFailures ?? 0, inRotation: true });
    }
    // Endpoints that left the rotation stay visible while connections to them finish.
    for (const [key, es] of st.stats?.endpoints ?? []) {
      if (!live.has(key) && es.active > 0) endpoints.push({ endpoint: key, active: es.active, total: es.total, dialFailures: es.dialFailures, inRotation: false });
    }
    endpoints.sort((a, b) => collator!.compare(a.endpoint, b.endpoint));
    const s = st.stats;
    return {
      servicePort: st.spn,
      protocol: st.protocol,
      portals: [...st.portals],
      listening: st.listening.map((a) => formatHostPort(a.host, a.port)),
      proxyPort: st.proxyPort,
      nodePort: st.nodePort,
      scheduler: st.scheduler,
      affinity: { type: st.affinity.type, timeoutSeconds: st.affinity.timeoutSeconds },
      error: st.error ?? null,
      stats:
        s === undefined
          ? null
          : {
              active: s.active,
              total: s.total,
              bytesIn: s.bytesIn,
              bytesOut: s.bytesOut,
              dialFailures: s.dialFailures,
              dialRetries: s.dialRetries,
              dialGiveUps: s.dialGiveUps,
              noEndpointRejections: s.noEndpointRejections,
              udpEvictions: s.udpEvictions,
            },
      endpoints,
    };
  });
  servicePorts.sort((a, b) => collator!.compare(a.servicePort, b.servicePort) || a.protocol.localeCompare(b.protocol));
  return {
    redirectMode: agent.redirectMode,
    healthy: health.healthy,
    reasons: [...health.reasons],
    draining: health.draining,
    lastUpdated: health.lastUpdatedMs === undefined ? null : new Date(health.lastUpdatedMs).toISOString(),
    currentTime: now.toISOString(),
    counts: { ...agent.counts() },
    source:
      source === undefined
        ? null
        : {
            connected: source.connected,
            lastSuccess: source.lastSuccessMs > 0 ? new Date(source.lastSuccessMs).toISOString() : null,
            lastError: source.lastError ?? null,
            informerRestarts: source.informerRestarts,
          },
    servicePorts,
  };
}
