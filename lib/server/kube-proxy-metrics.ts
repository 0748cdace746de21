import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { IPFamily } from '../model/ip-address.js';
import type { AgentView } from './agent-view.js';

/** kube-proxy's sync_proxy_rules_duration_seconds buckets: 1 ms doubling to 16.384 s. */
export const SYNC_BUCKETS: readonly number[] = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);

/**
 * kube-proxy's network_programming_duration_seconds buckets: 0, 0.25 s, 0.5 s, every second from
 * 1 to 59 s, every 5 s from 60 to 115 s, every 30 s from 2 to 5 min (81 boundaries; the leading 0
 * comes from how component-base merges bucket lists, and is kept so that dashboards match).
 */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = [
  0,
  0.25,
  0.5,
  ...Array.from({ length: 59 }, (_, i) => 1 + i),
  ...Array.from({ length: 12 }, (_, i) => 60 + 5 * i),
  ...Array.from({ length: 7 }, (_, i) => 120 + 30 * i),
];

/** Where the rule-apply failures of each redirect mode are counted, by kube-proxy's name for the same failure. */
const RULE_FAILURE_METRICS: Readonly<Record<string, { readonly name: string; readonly help: string }>> = {
  // The iptables backend applies its rules with iptables-restore, as kube-proxy's iptables mode does.
  iptables: { name: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', help: 'Cumulative proxy iptables restore failures' },
  // The nftables backend applies one `nft -f` transaction per sync, as kube-proxy's nftables sync does.
  nftables: { name: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total', help: 'Cumulative proxy nftables sync failures' },
};

const TRAFFIC_POLICIES = ['internal', 'external'] as const;

/**
 * kube-proxy's own metrics (kubeproxy_*), with its names, types, help, labels and buckets (as of
 * Kubernetes 1.34, where the sync metrics carry `ip_family`), so that dashboards and alerts written
 * for kube-proxy read this proxy unchanged. What a metric means here where the proxy differs:
 *
 * - One sync here programs every IP family at once; kube-proxy runs one proxier per family. A sync
 *   is observed once for each family the proxied services use.
 * - Endpoint changes reach the balancer as they arrive, not at the next sync: network programming
 *   latency is observed then, and the endpoint changes pending are always 0.
 * - The rule-apply failure counter is that of the redirect mode (iptables or nftables); `none`
 *   mode applies no rules and has neither.
 *
 * kube-proxy's partial-sync histograms and counters, rule-count gauges and conntrack metrics have
 * nothing to measure here and are not exported.
 */
export class KubeProxyMetrics {
  readonly #syncDuration: Histogram<'ip_family'>;
  readonly #lastSync: Gauge<'ip_family'>;
  readonly #programming: Histogram<'ip_family'>;
  readonly #ruleFailures: Counter<'ip_family'> | undefined;
  readonly #healthz: Counter<'code'>;
  readonly #livez: Counter<'code'>;

  /** `status`: the agent's syncStatus(), read once per scrape; undefined for an agent without one. */
  constructor(registry: Registry, agent: AgentView, status: () => ReturnType<NonNullable<AgentView['syncStatus']>> | undefined) {
    const registers = [registry];

    this.#syncDuration = new Histogram({
      name: 'kubeproxy_sync_proxy_rules_duration_seconds',
      help: 'SyncProxyRules latency in seconds',
      labelNames: ['ip_family'],
      buckets: [...SYNC_BUCKETS],
      registers,
    });
    this.#lastSync = new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_timestamp_seconds',
      help: 'The last time proxy rules were successfully synced',
      labelNames: ['ip_family'],
      registers,
    });
    new Gauge({
      name: 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds',
      help: 'The last time a sync of proxy rules was queued',
      labelNames: ['ip_family'],
      registers,
      collect() {
        this.reset();
        const s = status();
        if (s?.lastQueuedMs === undefined) return;
        for (const family of s.families) this.set({ ip_family: family }, s.lastQueuedMs / 1000);
      },
    });
    this.#programming = new Histogram({
      name: 'kubeproxy_network_programming_duration_seconds',
      help: 'In Cluster Network Programming Latency in seconds',
      labelNames: ['ip_family'],
      buckets: [...NETWORK_PROGRAMMING_BUCKETS],
      registers,
    });
    const count = (kind: 'gauge' | 'counter', name: string, help: string, key: 'endpointChangesPending' | 'endpointChangesTotal' | 'serviceChangesPending' | 'serviceChangesTotal'): void => {
      const collect = function (this: Gauge | Counter): void {
        this.reset();
        this.inc(status()?.[key] ?? 0);
      };
      if (kind === 'gauge') new Gauge({ name, help, registers, collect });
      else new Counter({ name, help, registers, collect });
    };
    count('gauge', 'kubeproxy_sync_proxy_rules_endpoint_changes_pending', 'Pending proxy rules Endpoint changes', 'endpointChangesPending');
    count('counter', 'kubeproxy_sync_proxy_rules_endpoint_changes_total', 'Cumulative proxy rules Endpoint changes', 'endpointChangesTotal');
    count('gauge', 'kubeproxy_sync_proxy_rules_service_changes_pending', 'Pending proxy rules Service changes', 'serviceChangesPending');
    count('counter', 'kubeproxy_sync_proxy_rules_service_changes_total', 'Cumulative proxy rules Service changes', 'serviceChangesTotal');
    // A gauge despite its name, as in kube-proxy: recounted at every scrape.
    new Gauge<'ip_family' | 'traffic_policy'>({
      name: 'kubeproxy_sync_proxy_rules_no_local_endpoints_total',
      help: 'Number of services with a Local traffic policy and no endpoints',
      labelNames: ['ip_family', 'traffic_policy'],
      registers,
      collect() {
        this.reset();
        const s = status();
        if (s === undefined) return;
        for (const family of new Set([...s.families, ...s.noLocalEndpoints.keys()])) {
          const n = s.noLocalEndpoints.get(family);
          for (const policy of TRAFFIC_POLICIES) this.set({ ip_family: family, traffic_policy: policy }, n?.[policy] ?? 0);
        }
      },
    });
    const failures = RULE_FAILURE_METRICS[agent.redirectMode];
    this.#ruleFailures = failures ? new Counter({ name: failures.name, help: failures.help, labelNames: ['ip_family'], registers }) : undefined;
    this.#healthz = new Counter({ name: 'kubeproxy_proxy_healthz_total', help: 'Cumulative proxy healthz HTTP status', labelNames: ['code'], registers });
    this.#livez = new Counter({ name: 'kubeproxy_proxy_livez_total', help: 'Cumulative proxy livez HTTP status', labelNames: ['code'], registers });
  }

  /** A sync finished; `families`: the IP families it programmed. */
  onSync(durationMs: number, ok: boolean, families: readonly IPFamily[], nowMs = Date.now()): void {
    for (const family of families) {
      this.#syncDuration.observe({ ip_family: family }, durationMs / 1000);
      if (ok) this.#lastSync.set({ ip_family: family }, nowMs / 1000);
      // Present from the first sync, so that the first failure is an increase a rate() can see.
      this.#ruleFailures?.inc({ ip_family: family }, 0);
    }
  }

  onRulesFailed(families: readonly IPFamily[]): void {
    for (const family of families) this.#ruleFailures?.inc({ ip_family: family });
  }

  onProgrammed(family: IPFamily, seconds: number): void {
    this.#programming.observe({ ip_family: family }, seconds);
  }

  /** An answer of the health server: `/healthz` or `/livez`, with its HTTP status. */
  onProbe(path: string, status: number): void {
    if (path === '/healthz') this.#healthz.inc({ code: String(status) });
    else if (path === '/livez') this.#livez.inc({ code: String(status) });
  }
}
