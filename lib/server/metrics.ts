import diagnosticsChannel from 'node:diagnostics_channel';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PortStatus } from '../agent/agent.js';
import { InvalidConfigError } from '../errors.js';
import type { AgentView } from './agent-view.js';

/** Every metric name starts with this. */
export const METRIC_PREFIX = 'kube_userspace_proxy_';

/** The diagnostics channels the agent publishes on (see lib/agent/agent.ts). */
export const SYNC_CHANNEL_NAME = 'kube-userspace-proxy:sync';
export const RULES_CHANNEL_NAME = 'kube-userspace-proxy:rules';

interface SyncMessage {
  readonly durationMs: number;
  readonly ok: boolean;
  /** When the agent names itself, messages of other agents in the process are ignored. */
  readonly agent?: unknown;
}

interface RulesMessage {
  readonly ok: boolean;
  readonly mode: string;
  readonly error?: string;
  readonly agent?: unknown;
}

export interface MetricsOptions {
  readonly agent: AgentView;
  /** Also export prom-client's process and Node.js metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
}

type PortLabels = 'service_port' | 'protocol';

/** kube-proxy's sync_proxy_rules_duration_seconds buckets: 1 ms doubling to about 16 s. */
const SYNC_BUCKETS: readonly number[] = Array.from({ length: 15 }, (_, i) => 0.001 * 2 ** i);

/**
 * The agent's Prometheus metrics, in their own Registry.
 *
 * Nothing is counted on the data path for metrics: the proxy sockets keep plain counters
 * (ProxyStats) and every service-port metric is read from agent.status() at scrape time, through
 * prom-client collect() callbacks, one status snapshot per scrape. Labels are the service port
 * (`ns/name:port`) and the protocol only, never a client or an endpoint, so the series count is
 * bounded by the number of service ports. Syncs and rule failures arrive on the agent's
 * diagnostics channels.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #agent: AgentView;
  /** The status of the scrape under way, so that every collect() sees the same one. */
  #scrape: PortStatus[] | undefined;
  readonly #syncDuration: Histogram;
  readonly #ruleErrors: Counter;
  #closed = false;

  constructor(options: MetricsOptions) {
    const agent = options.agent;
    if (typeof agent?.status !== 'function') throw new InvalidConfigError(['metrics: agent must be an Agent']);
    this.#agent = agent;
    const registers = [this.registry];
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
      new Gauge({ name: `${P}${name}`, help, registers, collect() { this.set(agent.counts()[key]); } });
    };
    counts('services', 'Services proxied.', 'services');
    counts('service_ports', 'Service ports proxied (listeners, one per port and traffic-policy scope).', 'servicePorts');
    counts('endpoints', 'Distinct endpoints (ip:port) of all proxied service ports.', 'endpoints');

    // Per service port, read from ProxyStats at scrape time.
    const labelNames: PortLabels[] = ['service_port', 'protocol'];
    const ports = (): PortStatus[] => this.#ports();
    const perPort = (kind: 'gauge' | 'counter', name: string, help: string, value: (st: PortStatus, stats: NonNullable<PortStatus['stats']>) => number | undefined): void => {
      const collect = function (this: Gauge<PortLabels> | Counter<PortLabels>): void {
        this.reset();
        for (const st of ports()) {
          if (st.stats === undefined) continue;
          const v = value(st, st.stats);
          if (v !== undefined) this.inc({ service_port: st.spn, protocol: st.protocol }, v);
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
    perPort('counter', 'udp_evictions_total', 'UDP sessions closed to stay within --udp-max-sessions.', (st, s) => (st.protocol === 'UDP' ? s.udpEvictions : undefined));
    new Counter<PortLabels | 'direction'>({
      name: `${P}bytes_total`,
      help: 'Bytes proxied: direction="in" from clients to endpoints, "out" from endpoints to clients.',
      labelNames: [...labelNames, 'direction'],
      registers,
      collect() {
        this.reset();
        for (const st of ports()) {
          if (st.stats === undefined) continue;
          this.inc({ service_port: st.spn, protocol: st.protocol, direction: 'in' }, st.stats.bytesIn);
          this.inc({ service_port: st.spn, protocol: st.protocol, direction: 'out' }, st.stats.bytesOut);
        }
      },
    });

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    diagnosticsChannel.subscribe(SYNC_CHANNEL_NAME, this.#onSync);
    diagnosticsChannel.subscribe(RULES_CHANNEL_NAME, this.#onRules);
  }

  /** The Content-Type of render()'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the Prometheus text format, from one snapshot of the agent's status. */
  async render(): Promise<string> {
    await this.#agent.refreshStats?.();
    this.#scrape = this.#agent.status();
    try {
      return await this.registry.metrics();
    } finally {
      this.#scrape = undefined;
    }
  }

  /** Stops listening to the agent's channels. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    diagnosticsChannel.unsubscribe(SYNC_CHANNEL_NAME, this.#onSync);
    diagnosticsChannel.unsubscribe(RULES_CHANNEL_NAME, this.#onRules);
  }

  #ports(): PortStatus[] {
    return this.#scrape ?? this.#agent.status();
  }

  #mine(message: { readonly agent?: unknown }): boolean {
    return message.agent === undefined || message.agent === this.#agent;
  }

  readonly #onSync = (message: unknown): void => {
    const m = message as SyncMessage;
    if (typeof m?.durationMs !== 'number' || !this.#mine(m)) return;
    this.#syncDuration.observe(m.durationMs / 1000);
  };

  readonly #onRules = (message: unknown): void => {
    const m = message as RulesMessage;
    if (m?.ok !== false || !this.#mine(m)) return;
    this.#ruleErrors.inc();
  };
}
