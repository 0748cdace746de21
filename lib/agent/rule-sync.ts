import diagnosticsChannel from 'node:diagnostics_channel';
import type { LoadBalancer } from '../balancer/load-balancer.js';
import { logger } from '../log.js';
import type { IPFamily } from '../model/ip-address.js';
import type { RuleBackend, RuleContext, ServicePortRules } from '../rules/rule-backend.js';
import { hostIPs } from './host-ips.js';
import { portalsOf } from './portal-plan.js';
import type { ProxiedPort } from './proxied-port.js';

const log = logger('agent');

/** Published after every rules apply: `{ agent, ok, mode, error? }`. */
export const RULES_CHANNEL = diagnosticsChannel.channel('kube-userspace-proxy:rules');

export interface RuleSyncOptions {
  readonly backend: RuleBackend;
  readonly balancer: LoadBalancer;
  readonly bindAddress: string;
  /** Node IPs for NodePorts (--nodeport-addresses), or undefined for every address; read at each sync. */
  readonly nodePortIPs: () => readonly string[] | undefined;
  /** What RULES_CHANNEL names as `agent`. */
  readonly owner: object;
}

/**
 * The rules modes' part of a sync: the installed rules follow the open listeners. A sync that
 * changes nothing runs no command; a failure is kept for health and retried at the next sync.
 */
export class RuleSync {
  readonly #o: RuleSyncOptions;
  /** The rules last applied, serialized. */
  #applied: string | undefined;
  #error: string | undefined;

  constructor(options: RuleSyncOptions) {
    this.#o = options;
  }

  get mode(): string {
    return this.#o.backend.mode;
  }

  /** Why the last apply failed; undefined once one succeeds. */
  get error(): string | undefined {
    return this.#error;
  }

  async start(): Promise<void> {
    await this.#o.backend.start();
  }

  /** Removes every rule installed. */
  async close(): Promise<void> {
    await this.#o.backend.close();
  }

  async sync(ports: Iterable<ProxiedPort>, families: () => IPFamily[]): Promise<void> {
    const { backend, owner } = this.#o;
    const rules: ServicePortRules[] = [];
    for (const st of ports) {
      const r = this.portRules(st);
      if (r !== undefined) rules.push(r);
    }
    const ctx = this.context();
    const text = JSON.stringify([rules, ctx]);
    if (text === this.#applied) return;
    try {
      await backend.sync(rules, ctx);
      this.#applied = text;
      this.#error = undefined;
      log.info('rules synced', { mode: backend.mode, servicePorts: rules.length });
      if (RULES_CHANNEL.hasSubscribers) RULES_CHANNEL.publish({ agent: owner, ok: true, mode: backend.mode });
    } catch (err) {
      this.#applied = undefined;
      this.#error = (err as Error).message;
      log.error('cannot apply rules', { mode: backend.mode, error: (err as Error).message });
      if (RULES_CHANNEL.hasSubscribers) RULES_CHANNEL.publish({ agent: owner, ok: false, mode: backend.mode, error: this.#error, families: families() });
    }
  }

  /** One port's rules rendered alone, exactly as --dry-run renders them; undefined while it has no proxy port. */
  render(st: ProxiedPort): string | undefined {
    const rules = this.portRules(st);
    return rules === undefined ? undefined : this.#o.backend.render([rules], this.context());
  }

  /** One open listener's rules; undefined until it has a proxy port. */
  portRules(st: ProxiedPort): ServicePortRules | undefined {
    if (!st.socket || st.proxyPort === 0) return undefined;
    return {
      spn: st.spn,
      protocol: st.port.protocol as 'TCP' | 'UDP',
      portals: portalsOf(st.service, st.port, st.scope, st.family),
      nodePort: st.claim ? st.port.nodePort : 0,
      proxyPort: st.proxyPort,
      ...(st.family ? { family: st.family } : {}),
      ...(this.#o.balancer.endpoints(st.key).length === 0 ? { noEndpoints: true } : {}),
    };
  }

  context(): RuleContext {
    const hosts = hostIPs(this.#o.bindAddress);
    return { bindAddress: this.#o.bindAddress, hostIPv4: hosts.v4, hostIPv6: hosts.v6, nodePortIPs: this.#o.nodePortIPs() };
  }
}
