import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import type { RuleBackend, RuleContext, ServicePortRules } from '../../lib/rules/rule-backend.js';

/**
 * A rules mode without root: the real iptables or nftables renderer, applying nothing. The agent
 * opens its proxy ports as in that mode (reachable directly), and whatever shows its rules shows
 * exactly the text the real backend would apply.
 */
export class RenderedRules implements RuleBackend {
  readonly mode: 'iptables' | 'nftables';
  readonly #real: RuleBackend;
  constructor(mode: 'iptables' | 'nftables') {
    this.mode = mode;
    this.#real = mode === 'iptables' ? new IptablesRules() : new NftablesRules();
  }
  async start(): Promise<void> {}
  async sync(): Promise<void> {}
  render(rules: readonly ServicePortRules[], context: RuleContext): string {
    return this.#real.render(rules, context);
  }
  async close(): Promise<void> {}
}
