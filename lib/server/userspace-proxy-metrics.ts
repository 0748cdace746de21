import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { PortStatus } from '../agent/agent.js';
import type { AgentView } from './agent-view.js';
import { SYNC_BUCKETS } from './kube-proxy-metrics.js';

/** Every metric name of this project's own metrics starts with this. */
export const METRIC_PREFIX = 'kube_userspace_proxy_';

/** The labels of a service port: its Service, the port's name ('' when unnamed) and protocol. */
type PortLabels = 'namespace' | 'service' | 'port' | 'protocol';

/** `namespace/name:port`, with ` (internal)`, ` (IPv6)` or both after it when the port is split by scope or family. */
const PORT_KEY = /^([^/]*)\/([^:]*):([^ ]*)/;

/**
 * The labels of one listener. A port whose internal and external traffic have listeners of their
 * own (different traffic policies) gets the same labels for both, so its series are their sums.
 */
function portLabels(st: PortStatus): Record<PortLabels, string> {
  const m = PORT_KEY.exec(st.spn);
  return { namespace: m?.[1] ?? '', service: m?.[2] ?? st.spn, port: m?.[3] ?? '', protocol: st.protocol };
}

/**
 * This project's own metrics (kube_userspace_proxy_*): syncs, rule failures, informer restarts,
 * counts, and per service port the connections, dials, bytes and UDP sessions. The per-port values
 * are read from the agent's ProxyStats at scrape time through collect() callbacks; labels name the
 * service port and protocol only, never a client or an endpoint, so the series count is bounded by
 * the number of service ports.
 */
export class UserspaceProxyMetrics {
  readonly #syncDuration: Histogram;
  readonly #ruleErrors: Counter;

  constructor(registry: Registry, agent: AgentView, ports: () => PortStatus[]) {
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
    const counts = (name: string, help: string, key: 'services' | 'servicePorts' | 'endpoints'): void => {
      new Gauge({
        name: `${P}${name}`,
        help,
        registers,
        collect() {
          this.set(agent.counts()[key]);
        },
      });
    };
    counts('services', 'Services proxied.', 'services');
    counts('service_ports', 'Service ports proxied (listeners, one per port and traffic-policy scope).', 'servicePorts');
    counts('endpoints', 'Distinct endpoints (ip:port) of all proxied service ports.', 'endpoints');

    const labelNames: PortLabels[] = ['namespace', 'service', 'port', 'protocol'];
    const perPort = (kind: 'gauge' | 'counter', name: string, help: string, value: (st: PortStatus, stats: NonNullable<PortStatus['stats']>) => number | undefined): void => {
      const collect = function (this: Gauge<PortLabels> | Counter<PortLabels>): void {
        this.reset();
        for (const st of ports()) {
          if (st.stats === undefined) continue;
          const v = value(st, st.stats);
          if (v !== undefined) this.inc(portLabels(st), v);
        }
      };
      if (kind === 'gauge') new Gauge<PortLabels>({ name: `${P}${name}`, help, labelNames, registers, collect });
      else new Counter<PortLabels>({ name: `${P}${name}`, help, labelNames, registers, collect });
    };
    perPort('gauge', 'service_port_connections_active', 'TCP connections being proxied now (UDP: live sessions).', (_, s) => s.active);
    perPort('counter', 'connections_total', 'TCP connections accepted (UDP: sessions created).', (_, s) => s.total);
    perPort('counter', 'dial_failures_total', 'Connection attempts to an endpoint that failed (UDP: upstream errors).', (_, s) => s.dialFailures);
    perPort('counter', 'dial_retries_total', 'Connection attempts after the first for one client connection.', (_, s) => s.dialRetries);
    perPort('counter', 'dial_give_ups_total', 'Client connections reset after every connection attempt failed.', (_, s) => s.dialGiveUps);
    perPort('counter', 'no_endpoint_rejections_total', 'Connections (UDP: datagrams) turned away because the service port had no endpoint.', (_, s) => s.noEndpointRejections);
    perPort('gauge', 'udp_sessions', 'Live UDP sessions (client address to upstream socket).', (st, s) => (st.protocol === 'UDP' ? s.active : undefined));
    perPort(
      'counter',
      'local_resource_errors_total',
      'Connections refused or closed, dials and UDP sessions given up, and accept errors, for lack of local descriptors, buffers or memory (not counted as dial failures).',
      (_, s) => s.localResourceErrors,
    );
    perPort('counter', 'tcp_idle_timeouts_total', 'TCP connections closed after no byte either way for the idle timeout.', (st, s) => (st.protocol === 'TCP' ? s.tcpIdleTimeouts : undefined));
    perPort('counter', 'udp_evictions_total', 'UDP sessions closed to stay within --udp-max-sessions.', (st, s) => (st.protocol === 'UDP' ? s.udpEvictions : undefined));
    new Gauge<PortLabels | 'scheduler'>({
      name: `${P}service_port_scheduler_info`,
      help: 'Always 1; the scheduler label names how the service port picks endpoints (kube-userspace-proxy.io/scheduler).',
      labelNames: [...labelNames, 'scheduler'],
      registers,
      collect() {
        this.reset();
        for (const st of ports()) this.set({ ...portLabels(st), scheduler: st.scheduler }, 1);
      },
    });
    new Counter<PortLabels | 'direction'>({
      name: `${P}bytes_total`,
      help: 'Bytes proxied: direction="in" from clients to endpoints, "out" from endpoints to clients.',
      labelNames: [...labelNames, 'direction'],
      registers,
      collect() {
        this.reset();
        for (const st of ports()) {
          if (st.stats === undefined) continue;
          const labels = portLabels(st);
          this.inc({ ...labels, direction: 'in' }, st.stats.bytesIn);
          this.inc({ ...labels, direction: 'out' }, st.stats.bytesOut);
        }
      },
    });
  }

  onSync(durationMs: number): void {
    this.#syncDuration.observe(durationMs / 1000);
  }

  onRulesFailed(): void {
    this.#ruleErrors.inc();
  }
}
