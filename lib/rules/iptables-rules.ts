import { RulesError } from '../errors.js';
import { logger } from '../log.js';
import type { IPFamily } from '../model/ip-address.js';
import { cleanupLeftovers } from './cleanup.js';
import type { CommandRunner } from './command-runner.js';
import { runChecked, spawnRunner } from './command-runner.js';
import { ConntrackCleaner, staleUdpFlows } from './conntrack.js';
import { JUMP_SOURCES, JUMPS, jumpRepairs } from './iptables-chains.js';
import type { IptablesCommands, IptablesFlavour } from './iptables-flavour.js';
import { detectIptablesFlavour, iptablesCommands } from './iptables-flavour.js';
import type { IptablesRuleSet } from './iptables-render.js';
import { iptablesRuleSet, renderDelta, renderFull, renderIptablesFamily } from './iptables-render.js';
import { parseChainListing } from './iptables-save-parser.js';
import { removeIptablesChains } from './iptables-teardown.js';
import type { PrivilegeProbe } from './privileges.js';
import { requireNetAdmin } from './privileges.js';
import { EMPTY_RULE_CONTEXT } from './rule-backend.js';
import type { RuleBackend, RuleContext, ServicePortRules } from './rule-backend.js';
import type { FamilyPlan, RulePlan } from './rule-plan.js';
import { FAMILIES, planRules } from './rule-plan.js';
import { SerialLifecycle } from './serial-lifecycle.js';

export interface IptablesRulesOptions extends PrivilegeProbe {
  /** Runs iptables & co.; default: spawn directly. Tests pass a `netnsRunner`. */
  readonly runner?: CommandRunner;
  /** Default: detected at start() (see detectIptablesFlavour). */
  readonly flavour?: IptablesFlavour;
  /** The families to install rules for; default both. Portals of a family left out are ignored. */
  readonly families?: readonly IPFamily[];
  /** Delete the conntrack entries of removed UDP portals (default true). */
  readonly clearConntrack?: boolean;
  /**
   * Syncs in between apply only the difference (`-D`/`-A` lines); at least this often (default 5 min),
   * and whenever a difference fails to apply, our chains are rewritten whole instead, which repairs any
   * edit made to them behind our back. 0: always rewrite whole.
   */
  readonly fullResyncIntervalMs?: number;
  /** The clock for fullResyncIntervalMs (tests). */
  readonly now?: () => number;
}

const log = logger('iptables-rules');

/**
 * `--redirect iptables`: the legacy kube-proxy userspace chains (KUBE-PORTALS-CONTAINER/-HOST,
 * KUBE-NODEPORT-CONTAINER/-HOST in nat, KUBE-NODEPORT-NON-LOCAL in filter), with the legacy rules and
 * comments, but applied the way the iptables proxier learned to: each sync is ONE
 * `iptables-restore --noflush` transaction per family, which the kernel applies atomically. The legacy
 * code ran one iptables command per rule (about 50 ms each: minutes for a few thousand services) and
 * only ever added rules.
 *
 * The transaction rewrites our chains whole at start, at least every fullResyncIntervalMs and whenever
 * an incremental one fails; in between it carries only the difference from the last sync (`-D`/`-A`),
 * which for one changed service among 10,000 is ~10x cheaper than rewriting 28,000 rules.
 *
 * Per sync and family: three `iptables -S` listings of the built-in chains our jumps live in (so a jump
 * someone deleted comes back, and a duplicated one goes) and one iptables-restore (none when nothing
 * changed; two when an incremental one fails). That count does not depend on the number of services;
 * conntrack deletions for removed UDP portals come on top.
 */
export class IptablesRules implements RuleBackend {
  readonly mode = 'iptables' as const;
  readonly #runner: CommandRunner;
  readonly #options: IptablesRulesOptions;
  readonly #families: readonly IPFamily[];
  readonly #conntrack: ConntrackCleaner | undefined;
  #flavour: IptablesFlavour | undefined;
  readonly #commands = new Map<IPFamily, IptablesCommands>();
  /** What the last successful sync installed, per family: the delta base, and the UDP conntrack diff base. */
  readonly #installed = new Map<IPFamily, { plan: FamilyPlan; rules: IptablesRuleSet; fullAt: number }>();
  readonly #fullResyncMs: number;
  readonly #now: () => number;
  readonly #lifecycle = new SerialLifecycle('iptables rules');

  constructor(options: IptablesRulesOptions = {}) {
    this.#options = options;
    this.#runner = options.runner ?? spawnRunner();
    this.#families = options.families ?? FAMILIES;
    if (this.#families.length === 0 || this.#families.some((f) => !FAMILIES.includes(f))) {
      throw new RulesError(`invalid families ${JSON.stringify(this.#families)}: expected IPv4 and/or IPv6`);
    }
    this.#conntrack = options.clearConntrack === false ? undefined : new ConntrackCleaner(this.#runner);
    this.#fullResyncMs = options.fullResyncIntervalMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** The flavour in use (known once started). */
  get flavour(): IptablesFlavour | undefined {
    return this.#flavour;
  }

  start(): Promise<void> {
    return this.#lifecycle.start(async () => {
      requireNetAdmin('--redirect iptables', 'use --redirect none', this.#options);
      const detected = this.#options.flavour ? { flavour: this.#options.flavour, reason: 'configured' } : await detectIptablesFlavour(this.#runner);
      for (const family of this.#families) {
        const commands = await iptablesCommands(this.#runner, detected.flavour, family);
        if (!commands) {
          const base = family === 'IPv4' ? 'iptables' : 'ip6tables';
          throw new RulesError(`${base}-${detected.flavour}-restore not found (needed for ${family} portals)`);
        }
        this.#commands.set(family, commands);
      }
      this.#flavour = detected.flavour;
      log.info('using iptables', { flavour: detected.flavour, reason: detected.reason, families: this.#families });
      await this.#removeOtherLeftovers(detected.flavour);
      // An empty sync is the whole leftover story for our own flavour: declaring our chains flushes
      // whatever a crashed run left in them, and the jump repair removes duplicated jumps.
      await this.#apply(planRules([], EMPTY_RULE_CONTEXT), true);
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
    const plan = planRules(rules, context);
    // What a sync applies on a node without our jumps; on a node that has them, the same minus the jump lines.
    const freshJumps = (table: 'nat' | 'filter'): string[] => JUMPS.filter((j) => j.table === table).map((j) => (j.position === 'first' ? `-I ${j.from} 1 ${j.spec}` : `-A ${j.from} ${j.spec}`));
    return this.#families
      .map((family) => {
        const binary = family === 'IPv4' ? 'iptables-restore' : 'ip6tables-restore';
        return `# ${binary} --noflush (${family})\n${renderIptablesFamily(plan[family], { nat: freshJumps('nat'), filter: freshJumps('filter') })}`;
      })
      .join('');
  }

  close(): Promise<void> {
    return this.#lifecycle.close(() => {
      this.#installed.clear();
      return [...this.#commands.values()].map((commands) => async () => {
        const removed = await removeIptablesChains(this.#runner, commands);
        if (removed.length) log.info('removed iptables chains', { removed });
      });
    });
  }

  /** Applies a plan: per family, list the built-in chains, then one restore. Families run in parallel. */
  async #apply(plan: RulePlan, full = false): Promise<void> {
    const results = await Promise.allSettled(this.#families.map((family) => this.#applyFamily(plan[family], this.#commands.get(family)!, full)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length) throw failed[0]!.reason;
  }

  async #applyFamily(plan: FamilyPlan, commands: IptablesCommands, full: boolean): Promise<void> {
    const listings = await Promise.all(
      JUMP_SOURCES.map(async (source) => {
        const argv = [commands.iptables, '-w', '5', '-t', source.table, '-S', source.chain];
        const result = await runChecked(this.#runner, argv, undefined, `${commands.family} ${commands.flavour} iptables -S ${source.chain}`);
        return { ...source, repairs: jumpRepairs(source.chain, parseChainListing(result.stdout)) };
      }),
    );
    const repairs = (table: 'nat' | 'filter'): string[] => listings.filter((l) => l.table === table).flatMap((l) => l.repairs);
    const jumps = { nat: repairs('nat'), filter: repairs('filter') };
    if (jumps.nat.length + jumps.filter.length > 0) {
      log.info('repairing jumps to our chains', { family: plan.family, lines: [...jumps.nat, ...jumps.filter] });
    }
    const rules = iptablesRuleSet(plan);
    const installed = this.#installed.get(plan.family);
    const restore = [commands.restore, '--noflush', '-w', '5'];
    const what = `${commands.family} ${commands.flavour} iptables-restore`;
    const fullDue = !installed || full || this.#now() - installed.fullAt >= this.#fullResyncMs;
    let rewritten = fullDue;
    if (!fullDue) {
      const delta = renderDelta(installed.rules, rules, jumps);
      const result = delta === undefined ? undefined : await this.#runner(restore, delta);
      if (result && result.code !== 0) {
        // Our chains are not what we left them as (edited by hand, flushed): rewrite them whole.
        log.warn('incremental iptables update failed; rewriting our chains', { family: plan.family, stderr: result.stderr.trim() });
        rewritten = true;
      }
    }
    if (rewritten) await runChecked(this.#runner, restore, renderFull(rules, jumps), what);
    this.#installed.set(plan.family, { plan, rules, fullAt: rewritten ? this.#now() : installed!.fullAt });
    log.debug('synced iptables rules', { family: plan.family, portals: plan.portals.length, nodePorts: plan.nodePorts.length, rewritten });
    if (this.#conntrack) await this.#conntrack.clear(staleUdpFlows(installed?.plan, plan));
  }

  /**
   * Rules a crashed run left in the other iptables flavour or in our nftables table would still send
   * traffic to proxy ports nobody listens on any more, ahead of or alongside ours: remove them. Failing
   * here (a flavour the kernel cannot load, say) is logged, not fatal.
   */
  async #removeOtherLeftovers(flavour: IptablesFlavour): Promise<void> {
    try {
      const other: IptablesFlavour = flavour === 'nft' ? 'legacy' : 'nft';
      const { removed } = await cleanupLeftovers(this.#runner, { iptables: [other], families: this.#families, nftables: true, addresses: false });
      if (removed.length) log.warn('removed leftover rules of an earlier run', { removed });
    } catch (err) {
      log.warn('could not remove leftovers of an earlier run', { error: err });
    }
  }
}
