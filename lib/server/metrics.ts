import diagnosticsChannel from 'node:diagnostics_channel';
import { setImmediate as setImmediatePromise } from 'node:timers/promises';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { InvalidConfigError } from '../errors.js';
import { replaceActiveHandleMetrics } from './active-handle-metrics.js';
import type { IPFamily } from '../model/ip-address.js';
import type { AgentView } from './agent-view.js';
import { KubeProxyMetrics } from './kube-proxy-metrics.js';
import { PortSeries } from './port-series.js';
import { UserspaceProxyMetrics } from './userspace-proxy-metrics.js';

export { METRIC_PREFIX } from './userspace-proxy-metrics.js';

/** The diagnostics channels the agent and the health server publish on. */
export const SYNC_CHANNEL_NAME = 'kube-userspace-proxy:sync';
export const RULES_CHANNEL_NAME = 'kube-userspace-proxy:rules';
export const PROGRAMMED_CHANNEL_NAME = 'kube-userspace-proxy:network-programmed';
export const PROBE_CHANNEL_NAME = 'kube-userspace-proxy:health-probe';

/** Every message names its agent; messages of other agents in the process are ignored. */
interface Message {
  readonly agent?: unknown;
}

interface SyncMessage extends Message {
  readonly durationMs: number;
  readonly ok: boolean;
  readonly families?: readonly IPFamily[];
}

interface RulesMessage extends Message {
  readonly ok: boolean;
  readonly mode: string;
  readonly error?: string;
  readonly families?: readonly IPFamily[];
}

interface ProgrammedMessage extends Message {
  readonly family: IPFamily;
  readonly seconds: number;
}

interface ProbeMessage extends Message {
  readonly path: string;
  readonly status: number;
}

export interface MetricsOptions {
  readonly agent: AgentView;
  /** Also export prom-client's process and Node.js metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
}

/** A sync message without families comes from an agent that serves IPv4 only. */
const DEFAULT_FAMILIES: readonly IPFamily[] = ['IPv4'];

/**
 * The agent's Prometheus metrics: this project's own (UserspaceProxyMetrics, and PortSeries per
 * service port), kube-proxy's (KubeProxyMetrics), and prom-client's process metrics, rendered in
 * that order.
 *
 * Nothing is counted on the data path for metrics: the proxy sockets keep plain counters
 * (ProxyStats), and every per-port metric and count is read from the agent at scrape time, one
 * status snapshot per scrape. Events (syncs, rule failures, endpoint changes in force, health
 * probes) arrive on diagnostics channels.
 */
export class Metrics {
  /** The metrics before the per-port ones, kube-proxy's after them, then the process metrics: each in its own prom-client Registry. */
  readonly #before = new Registry();
  readonly #after = new Registry();
  readonly #process = new Registry();
  readonly #agent: AgentView;
  readonly #ports = new PortSeries();
  readonly #own: UserspaceProxyMetrics;
  readonly #kubeProxy: KubeProxyMetrics;
  /** What the collect() callbacks of the registry being rendered have read of the agent: each read once per scrape. */
  #reads: Map<string, unknown> | undefined;
  readonly #subscriptions: [string, (message: unknown) => void][];
  #closed = false;

  constructor(options: MetricsOptions) {
    const agent = options.agent;
    if (typeof agent?.status !== 'function') throw new InvalidConfigError(['metrics: agent must be an Agent']);
    this.#agent = agent;
    this.#own = new UserspaceProxyMetrics(this.#before, agent, () => this.#once('counts', () => agent.counts()));
    this.#kubeProxy = new KubeProxyMetrics(this.#after, agent, () => this.#once('syncStatus', () => agent.syncStatus?.()));
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.#process });
      replaceActiveHandleMetrics(this.#process);
    }
    this.#subscriptions = [
      [SYNC_CHANNEL_NAME, this.#onSync],
      [RULES_CHANNEL_NAME, this.#onRules],
      [PROGRAMMED_CHANNEL_NAME, this.#onProgrammed],
      [PROBE_CHANNEL_NAME, this.#onProbe],
    ];
    for (const [name, fn] of this.#subscriptions) diagnosticsChannel.subscribe(name, fn);
  }

  /** The Content-Type of render()'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.#after.contentType;
  }

  /**
   * Every metric in the Prometheus text format, the per-port ones from one snapshot of the
   * agent's status. Each registry's text ends in a newline, and metrics are separated by an empty
   * line, as in prom-client's text of a single registry.
   */
  async render(): Promise<string> {
    await this.#agent.refreshStats?.();
    const before = await this.#collect(this.#before);
    // Yields between the parts, so that with many ports a scrape is several short stalls, not one long one.
    await setImmediatePromise();
    const perPort = await this.#ports.render(this.#agent.portCounters?.() ?? this.#agent.status());
    await setImmediatePromise();
    const after = await this.#collect(this.#after);
    // The process metrics list every handle (one per listener) once: with many ports, a part of their own.
    await setImmediatePromise();
    const processMetrics = await this.#process.metrics();
    return `${before}\n${perPort.join('\n\n')}\n\n${after}${processMetrics === '\n' ? '' : `\n${processMetrics}`}`;
  }

  /**
   * prom-client calls every collect() of a registry synchronously when its metrics() is called
   * (their awaits come after), so the reads are shared for exactly that call, also when scrapes
   * overlap.
   */
  #collect(registry: Registry): Promise<string> {
    this.#reads = new Map();
    try {
      return registry.metrics();
    } finally {
      this.#reads = undefined;
    }
  }

  #once<T>(key: string, read: () => T): T {
    if (this.#reads === undefined) return read();
    if (!this.#reads.has(key)) this.#reads.set(key, read());
    return this.#reads.get(key) as T;
  }

  /** Stops listening to the channels. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [name, fn] of this.#subscriptions) diagnosticsChannel.unsubscribe(name, fn);
  }

  #mine(message: Message | undefined): boolean {
    return message !== undefined && message !== null && (message.agent === undefined || message.agent === this.#agent);
  }

  readonly #onSync = (message: unknown): void => {
    const m = message as SyncMessage | undefined;
    if (!this.#mine(m) || typeof m!.durationMs !== 'number') return;
    this.#own.onSync(m!.durationMs);
    this.#kubeProxy.onSync(m!.durationMs, m!.ok === true, m!.families ?? DEFAULT_FAMILIES);
  };

  readonly #onRules = (message: unknown): void => {
    const m = message as RulesMessage | undefined;
    if (!this.#mine(m) || m!.ok !== false) return;
    this.#own.onRulesFailed();
    this.#kubeProxy.onRulesFailed(m!.families ?? DEFAULT_FAMILIES);
  };

  readonly #onProgrammed = (message: unknown): void => {
    const m = message as ProgrammedMessage | undefined;
    if (!this.#mine(m) || typeof m!.seconds !== 'number' || (m!.family !== 'IPv4' && m!.family !== 'IPv6')) return;
    this.#kubeProxy.onProgrammed(m!.family, m!.seconds);
  };

  readonly #onProbe = (message: unknown): void => {
    const m = message as ProbeMessage | undefined;
    if (!this.#mine(m) || typeof m!.status !== 'number') return;
    this.#kubeProxy.onProbe(m!.path, m!.status);
  };
}
