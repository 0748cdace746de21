import { RulesError } from '../errors.js';
import { logger } from '../log.js';
import type { IPFamily } from '../model/ip-address.js';
import { cleanupLeftovers } from './cleanup.js';
import type { CommandRunner } from './command-runner.js';
import { requireSystemBinary, runChecked, spawnRunner } from './command-runner.js';
import { ConntrackCleaner, staleUdpFlows } from './conntrack.js';
import { renderNftables } from './nftables-render.js';
import { removeNftTable } from './nftables-table.js';
import type { PrivilegeProbe } from './privileges.js';
import { requireNetAdmin } from './privileges.js';
import { EMPTY_RULE_CONTEXT } from './rule-backend.js';
import type { RuleBackend, RuleContext, ServicePortRules } from './rule-backend.js';
import type { RulePlan } from './rule-plan.js';
import { FAMILIES, planRules } from './rule-plan.js';
import { SerialLifecycle } from './serial-lifecycle.js';

export interface NftablesRulesOptions extends PrivilegeProbe {
  /** Runs nft & co.; default: spawn directly. Tests pass a `netnsRunner`. */
  readonly runner?: CommandRunner;
  /** The families to install rules for; default both. Portals of a family left out are ignored. */
  readonly families?: readonly IPFamily[];
  /** Delete the conntrack entries of removed UDP portals (default true). */
  readonly clearConntrack?: boolean;
}

const log = logger('nftables-rules');

/**
 * `--redirect nftables`: every portal in one `inet kube-userspace-proxy` table whose rule count is
 * fixed, the services being elements of maps (see renderNftables). Each sync is ONE `nft -f -`
 * transaction that replaces the table as a whole; one process execution however many services.
 */
export class NftablesRules implements RuleBackend {
  readonly mode = 'nftables' as const;
  readonly #runner: CommandRunner;
  readonly #options: NftablesRulesOptions;
  readonly #families: readonly IPFamily[];
  readonly #conntrack: ConntrackCleaner | undefined;
  #nft: string | undefined;
  #applied: RulePlan | undefined;
  readonly #lifecycle = new SerialLifecycle('nftables rules');

  constructor(options: NftablesRulesOptions = {}) {
    this.#options = options;
    this.#runner = options.runner ?? spawnRunner();
    this.#families = options.families ?? FAMILIES;
    if (this.#families.length === 0 || this.#families.some((f) => !FAMILIES.includes(f))) {
      throw new RulesError(`invalid families ${JSON.stringify(this.#families)}: expected IPv4 and/or IPv6`);
    }
    this.#conntrack = options.clearConntrack === false ? undefined : new ConntrackCleaner(this.#runner);
  }

  start(): Promise<void> {
    return this.#lifecycle.start(async () => {
      requireNetAdmin('--redirect nftables', 'use --redirect none', this.#options);
      this.#nft = await requireSystemBinary('nft');
      const version = await this.#runner([this.#nft, '--version']);
      log.info('using nftables', { version: version.stdout.trim(), families: this.#families });
      await this.#removeOtherLeftovers();
      // Applying an empty table replaces whatever table a crashed run left.
      await this.#apply(planRules([], EMPTY_RULE_CONTEXT));
    });
  }

  sync(rules: readonly ServicePortRules[], context: RuleContext): Promise<void> {
    return this.#lifecycle.sync(async () => {
      const plan = planRules(rules, context);
      for (const d of plan.dropped) log.warn('dropped duplicate portal', { service: d.spn, reason: d.reason });
      await this.#apply(plan);
    });
  }

  render(rules: readonly ServicePortRules[], context: RuleContext): string {
    return renderNftables(planRules(rules, context), this.#families);
  }

  close(): Promise<void> {
    return this.#lifecycle.close(() => [
      async () => {
        if (await removeNftTable(this.#runner, this.#nft)) log.info('removed nftables table');
      },
    ]);
  }

  async #apply(plan: RulePlan): Promise<void> {
    await runChecked(this.#runner, [this.#nft!, '-f', '-'], renderNftables(plan, this.#families), 'nft -f');
    const before = this.#applied;
    this.#applied = plan;
    log.debug('synced nftables rules', { portals: plan.IPv4.portals.length + plan.IPv6.portals.length, nodePorts: plan.IPv4.nodePorts.length });
    if (this.#conntrack) {
      await this.#conntrack.clear(this.#families.flatMap((family) => staleUdpFlows(before?.[family], plan[family])));
    }
  }

  /** Our iptables chains left by a crashed `--redirect iptables` run would capture portals first: remove them (logged, not fatal). */
  async #removeOtherLeftovers(): Promise<void> {
    try {
      const { removed } = await cleanupLeftovers(this.#runner, { families: this.#families, nftables: false, addresses: false });
      if (removed.length) log.warn('removed leftover rules of an earlier run', { removed });
    } catch (err) {
      log.warn('could not remove leftovers of an earlier run', { error: err });
    }
  }
}
