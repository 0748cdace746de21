import { servicePortName } from '../../lib/model/service-port-name.js';
import type { RuleContext, ServicePortRules } from '../../lib/rules/rule-backend.js';

/** Service ports, rule contexts and iptables-save line filters shared by the rule specs. */

/** The `-A` lines of our chains in iptables-save output, in order. */
export function ourRuleLines(save: string): string[] {
  return save.split('\n').filter((l) => /^-A KUBE-(PORTALS|NODEPORT|USERSPACE)-/.test(l));
}

/** Every line mentioning one of our chains (declarations, rules, jumps). */
export function kubeLines(save: string): string[] {
  return save.split('\n').filter((l) => /KUBE-(PORTALS|NODEPORT|USERSPACE)-/.test(l));
}

/** The jumps into our chains from built-in chains, as iptables-save prints them. */
export function jumpLines(save: string): string[] {
  return save.split('\n').filter((l) => /^-A (PREROUTING|OUTPUT|INPUT) .*-j KUBE-/.test(l));
}

/** The `-A` lines of a rendered restore text (without jump repairs). */
export function renderedRuleLines(text: string): string[] {
  return text.split('\n').filter((l) => /^-A KUBE-/.test(l));
}

// ── Fixtures ──────────────────────────────────────────────────────────────────────────────────

export const KUBERNETES: ServicePortRules = {
  spn: servicePortName('default', 'kubernetes', 'https'),
  protocol: 'TCP',
  portals: [{ ip: '10.96.0.1', port: 443, kind: 'clusterIP' }],
  nodePort: 0,
  proxyPort: 36000,
};

export const FRONTEND: ServicePortRules = {
  spn: servicePortName('web', 'frontend', 'http'),
  protocol: 'TCP',
  portals: [
    { ip: '10.96.0.10', port: 80, kind: 'clusterIP' },
    { ip: '203.0.113.7', port: 80, kind: 'externalIP' },
    { ip: '198.51.100.9', port: 80, kind: 'loadBalancerIP' },
    { ip: 'fd00:96::10', port: 80, kind: 'clusterIP' },
  ],
  nodePort: 30080,
  proxyPort: 36001,
};

export const DNS: ServicePortRules = {
  spn: servicePortName('kube-system', 'kube-dns', 'dns'),
  protocol: 'UDP',
  portals: [
    { ip: '10.96.0.53', port: 53, kind: 'clusterIP' },
    { ip: 'fd00:96:0:0::53', port: 53, kind: 'clusterIP' },
  ],
  nodePort: 30053,
  proxyPort: 36002,
};

export const FIXTURE: readonly ServicePortRules[] = [FRONTEND, DNS, KUBERNETES];

export const ANY: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: '10.0.0.5', hostIPv6: 'fd00::5', nodePortIPs: undefined };

export const SPECIFIC: RuleContext = { bindAddress: '10.0.0.5', hostIPv4: '10.0.0.5', hostIPv6: 'fd00::5', nodePortIPs: ['10.0.0.5', '192.168.1.5', 'fd00::5'] };
