import type { AgentView } from './agent-view.js';
import type { Reply } from './http-listener.js';

/** Go's zero time, which kube-proxy reports as lastUpdated before its first update. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The body of /healthz: kube-proxy's three fields, plus why when unhealthy. */
export interface HealthzBody {
  /** When the last successful sync finished (RFC 3339). */
  readonly lastUpdated: string;
  readonly currentTime: string;
  /** false while this node is being deleted or is tainted ToBeDeletedByClusterAutoscaler. */
  readonly nodeEligible: boolean;
  /** Only when unhealthy: every reason, joined with "; ". */
  readonly reason?: string;
}

/** The body of /livez: kube-proxy's two fields, plus why when not live. */
export interface LivezBody {
  readonly lastUpdated: string;
  readonly currentTime: string;
  readonly reason?: string;
}

/**
 * kube-proxy's /healthz answer (`application/json`, `X-Content-Type-Options: nosniff`), with an
 * honest status: 200 when the agent is healthy and this node is eligible, else 503 with the
 * reasons (stale source or sync, rules that failed to apply, listeners that failed to open,
 * draining, a node being deleted). Load balancers probe this to pick nodes: a node the Cluster
 * Autoscaler is about to remove answers 503 so that they drain it first. The legacy userspace
 * proxier was never given a health updater and always answered 200.
 */
export function healthzReply(agent: AgentView, now = new Date()): Reply {
  const h = agent.health();
  const body: HealthzBody = {
    lastUpdated: lastUpdated(h.lastUpdatedMs),
    currentTime: now.toISOString(),
    nodeEligible: h.nodeEligible ?? true,
    ...(h.healthy ? {} : { reason: h.reasons.length > 0 ? h.reasons.join('; ') : 'unhealthy' }),
  };
  return { status: h.healthy ? 200 : 503, contentType: 'application/json', body: JSON.stringify(body) };
}

/**
 * kube-proxy's /livez: its JSON, 503 only when the sync loop has stopped making progress (no
 * successful sync for two sync periods once the initial state had arrived), never for the node's
 * eligibility. What a liveness probe restarts must be something a restart can cure: a wedged
 * sync loop (a rule tool that hangs, say) is; an unreachable API server, a port another process
 * holds, a node being drained or the agent's own graceful shutdown are not, and restarting
 * for them would only cut established connections. (Until this followed kube-proxy, /livez
 * always answered 200 "ok"; probes look at the status only.)
 */
export function livezReply(agent: AgentView, now = new Date()): Reply {
  const h = agent.health();
  const live = h.syncHealthy ?? true;
  const body: LivezBody = {
    lastUpdated: lastUpdated(h.lastUpdatedMs),
    currentTime: now.toISOString(),
    ...(live ? {} : { reason: h.lastUpdatedMs === undefined ? 'no successful sync since the initial state arrived' : 'no successful sync for two sync periods' }),
  };
  return { status: live ? 200 : 503, contentType: 'application/json', body: JSON.stringify(body) };
}

function lastUpdated(ms: number | undefined): string {
  return ms === undefined ? ZERO_TIME : new Date(ms).toISOString();
}
