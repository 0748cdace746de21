import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AgentView } from './agent-view.js';
import { SYNC_BUCKETS } from './kube-proxy-metrics.js';

/** Every metric name of this project's own metrics starts with this. */
export const METRIC_PREFIX = 'kube_userspace_proxy_';

/**
 * This project's own metrics (kube_userspace_proxy_*) that are not per service port: syncs, rule
 * failures, informer restarts and counts. The per-port ones are PortSeries'.
 */
export class UserspaceProxyMetrics {
  readonly #syncDuration: Histogram;
  readonly #ruleErrors: Counter;

  /** `counts`: the agent's counts(), read once per scrape. */
  constructor(registry: Registry, agent: AgentView, counts: () => ReturnType<AgentView['counts']>) {
    const registers = [registry];
    const P = METRIC_PREFIX;

    this.#syncDuration = new Histogram({
      name: `${P}sync_duration_seconds`,
      help: 'How long each sync of listeners and rules with the services took.',
      buckets: [...SYNC_BUCKETS],
      registers,
    });
    new Gauge({
      name: `${P}last_sync_timestamp_seconds`,
      help: 'When the last successful sync finished (seconds since the epoch; 0 before the first).',
      registers,
      collect() {
        this.set((agent.health().lastUpdatedMs ?? 0) / 1000);
      },
    });
    this.#ruleErrors = new Counter({
      name: `${P}rule_apply_errors_total`,
      help: 'Syncs whose iptables or nftables rules failed to apply.',
      registers,
    });
    new Counter({
      name: `${P}informer_restarts_total`,
      help: 'Kubernetes API informer restarts after errors and watchdog relists (0 with manifests).',
      registers,
      collect() {
        this.reset();
        this.inc(agent.sourceHealth()?.informerRestarts ?? 0);
      },
    });
    const count = (name: string, help: string, key: 'services' | 'servicePorts' | 'endpoints'): void => {
      new Gauge({
        name: `${P}${name}`,
        help,
        registers,
        collect() {
          this.set(counts()[key]);
        },
      });
    };
    count('services', 'Services proxied.', 'services');
    count('service_ports', 'Service ports proxied (listeners, one per port and traffic-policy scope).', 'servicePorts');
    count('endpoints', 'Distinct endpoints (ip:port) of all proxied service ports.', 'endpoints');
  }

  onSync(durationMs: number): void {
    this.#syncDuration.observe(durationMs / 1000);
  }

  onRulesFailed(): void {
    this.#ruleErrors.inc();
  }
}
