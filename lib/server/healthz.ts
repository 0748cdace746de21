import type { AgentView } from './agent-view.js';
import type { Reply } from './http-listener.js';

/** Go's zero time, which kube-proxy reports as lastUpdated before its first update. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The body of /healthz: kube-proxy's two fields, plus why when unhealthy. */
export interface HealthzBody {
  /** When the last successful sync finished (RFC 3339). */
  readonly lastUpdated: string;
  readonly currentTime: string;
  /** Only when unhealthy: every reason, joined with "; ". */
  readonly reason?: string;
}

/**
 * kube-proxy's /healthz answer (`application/json`, `X-Content-Type-Options: nosniff`), with an
 * honest status: 200 when the agent is healthy, else 503 with the reasons (stale source or sync,
 * rules that failed to apply, listeners that failed to open, draining). The legacy userspace
 * proxier was never given a health updater and always answered 200.
 */
export function healthzReply(agent: AgentView, now = new Date()): Reply {
  const h = agent.health();
  const body: HealthzBody = {
    lastUpdated: h.lastUpdatedMs === undefined ? ZERO_TIME : new Date(h.lastUpdatedMs).toISOString(),
    currentTime: now.toISOString(),
    ...(h.healthy ? {} : { reason: h.reasons.length > 0 ? h.reasons.join('; ') : 'unhealthy' }),
  };
  return { status: h.healthy ? 200 : 503, contentType: 'application/json', body: JSON.stringify(body) };
}
