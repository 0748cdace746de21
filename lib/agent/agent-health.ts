import type { SourceHealth } from '../source/service-source.js';

export interface AgentHealth {
  readonly healthy: boolean;
  /** Why not healthy, one phrase each. */
  readonly reasons: readonly string[];
  /** When the last successful sync finished (ms since the epoch). */
  readonly lastUpdatedMs: number | undefined;
  readonly draining: boolean;
  /** false while this node is being deleted or tainted for deletion (kube-proxy's nodeEligible); undefined means true. */
  readonly nodeEligible?: boolean;
  /**
   * false once the sync loop has not completed a successful sync for two sync periods after the
   * initial state arrived: kube-proxy's /livez condition. undefined means true.
   */
  readonly syncHealthy?: boolean;
}

/** What the proxier's health is judged by, read at the time asked. */
export interface ProxierState {
  readonly syncPeriodMs: number;
  readonly draining: boolean;
  /** When the last successful sync finished; undefined before the first. */
  readonly lastSyncOkMs: number | undefined;
  /** When the source delivered its initial state; undefined before. */
  readonly syncedAtMs: number | undefined;
  readonly rulesError: string | undefined;
  /** Sockets whose listener or node port failed to open. */
  readonly failedPorts: number;
  readonly source: SourceHealth | undefined;
  readonly node: { readonly eligible: boolean; readonly reason?: string };
}

/**
 * Why the proxy itself is unhealthy, node eligibility aside: kube-proxy's service health checks
 * (serviceProxyHealthy) read this part only.
 */
export function proxierReasons(state: ProxierState, now: number): string[] {
  const reasons: string[] = [];
  const staleAfter = 2 * state.syncPeriodMs;
  if (state.draining) reasons.push('draining');
  if (state.lastSyncOkMs === undefined) reasons.push('no sync yet');
  else if (now - state.lastSyncOkMs > staleAfter) reasons.push(`last successful sync ${Math.round((now - state.lastSyncOkMs) / 1000)}s ago`);
  if (state.rulesError !== undefined) reasons.push(`rules failed to apply: ${state.rulesError}`);
  if (state.failedPorts > 0) reasons.push(`${state.failedPorts} listener${state.failedPorts === 1 ? '' : 's'} failed to open`);
  const source = state.source;
  if (source && now - source.lastSuccessMs > staleAfter) {
    reasons.push(`service source stale: no successful contact for ${Math.round((now - source.lastSuccessMs) / 1000)}s${source.lastError ? ` (${source.lastError})` : ''}`);
  }
  return reasons;
}

/**
 * Healthy when the last sync succeeded and is recent, the rules applied, every listener is open,
 * the source is fresh, the agent is not draining, and this node is not being deleted (kube-proxy's
 * nodeEligible). (The legacy proxier always said 200.)
 */
export function agentHealth(state: ProxierState, now: number): AgentHealth {
  const reasons = proxierReasons(state, now);
  if (!state.node.eligible) reasons.push(state.node.reason!);
  // A draining agent has stopped syncing on purpose.
  const lastProgressMs = state.lastSyncOkMs ?? state.syncedAtMs;
  const syncHealthy = state.draining || lastProgressMs === undefined || now - lastProgressMs <= 2 * state.syncPeriodMs;
  return { healthy: reasons.length === 0, reasons, lastUpdatedMs: state.lastSyncOkMs, draining: state.draining, nodeEligible: state.node.eligible, syncHealthy };
}
