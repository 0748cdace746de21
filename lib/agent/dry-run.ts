import type { Config } from '../config/config.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import { isProxied } from '../model/service.js';
import type { ServiceSpec } from '../model/service.js';
import { servicePortName } from '../model/service-port-name.js';
import { IptablesRules } from '../rules/iptables-rules.js';
import { NftablesRules } from '../rules/nftables-rules.js';
import type { RuleContext, ServicePortRules } from '../rules/rule-backend.js';
import type { ServiceSource } from '../source/service-source.js';
import { addressesInCidrs, hostIPs } from './host-ips.js';
import { groupsOf, portalsOf } from './portal-plan.js';

/** First proxy port shown when the kernel would choose them at run time. */
const PLACEHOLDER_BASE = 40000;

/**
 * --dry-run: reads the services once and returns the exact text the iptables or nftables backend
 * would apply (iptables-restore or nft syntax). Needs no root and changes nothing: the way to
 * learn what the proxy does to a node. Proxy ports come from --proxy-port-range in order; without
 * one the kernel picks them at run time, so placeholders are shown and the header says so.
 */
export async function dryRunRules(config: Config, source: ServiceSource): Promise<string> {
  const services = new Map<string, ServiceSpec>();
  await source.start({
    onServiceChange: (key, _prev, cur) => void (cur ? services.set(key, cur) : services.delete(key)),
    onEndpointSliceChange: (_key: string, _prev: EndpointSliceSpec | undefined, _cur: EndpointSliceSpec | undefined) => {},
    onSynced: () => {},
  });
  await source.close();

  const mode = config.redirect === 'nftables' ? 'nftables' : 'iptables';
  const rules: ServicePortRules[] = [];
  let next = config.proxyPortRange?.base ?? PLACEHOLDER_BASE;
  for (const key of [...services.keys()].sort()) {
    const svc = services.get(key)!;
    if (!isProxied(svc)) continue;
    for (const port of svc.ports) {
      if (port.protocol !== 'TCP' && port.protocol !== 'UDP') continue;
      for (const group of groupsOf(svc, port)) {
        rules.push({
          spn: servicePortName(svc.namespace, svc.name, port.name),
          protocol: port.protocol,
          portals: portalsOf(svc, port, group.scope, group.family),
          nodePort: group.scope === 'internal' ? 0 : port.nodePort,
          proxyPort: next++,
          ...(group.family ? { family: group.family } : {}),
        });
      }
    }
  }
  const hosts = hostIPs(config.bindAddress);
  const context: RuleContext = {
    bindAddress: config.bindAddress,
    hostIPv4: hosts.v4,
    hostIPv6: hosts.v6,
    nodePortIPs: config.nodePortAddresses.length > 0 ? addressesInCidrs(config.nodePortAddresses) : undefined,
  };
  const backend = mode === 'nftables' ? new NftablesRules() : new IptablesRules();
  const header = [
    `# kube-userspace-proxy --dry-run: the ${mode} rules for ${rules.length} service port(s); nothing was changed.`,
    config.proxyPortRange
      ? '# Proxy ports are taken from --proxy-port-range in order here; at run time each is drawn from the range.'
      : `# Proxy ports are chosen by the kernel at run time; shown here as ${PLACEHOLDER_BASE}, ${PLACEHOLDER_BASE + 1}, ...`,
  ];
  if (config.redirect === 'none' || config.redirect === 'auto') header.push(`# --redirect ${config.redirect} installs no rules of its own; these are what --redirect ${mode} would install.`);
  return `${header.join('\n')}\n${backend.render(rules, context)}`;
}
