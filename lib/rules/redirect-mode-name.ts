import type { AddressAssigner } from './address-assigner.js';
import type { RuleBackend } from './rule-backend.js';

/**
 * How portal traffic reaches the listeners, as logged at start and shown on /status: `iptables`,
 * `nftables`, `none`, or `none --assign-service-ips=lo` (the interface that holds the service IPs).
 */
export function redirectModeName(rules: Pick<RuleBackend, 'mode'> | undefined, assigner: Pick<AddressAssigner, 'interface'> | undefined): string {
  if (rules) return rules.mode;
  return assigner ? `none --assign-service-ips=${assigner.interface}` : 'none';
}
