import test from 'ava';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import type { RuleContext, ServicePortRules } from '../../lib/rules/rule-backend.js';
import { rulesExcerpt } from '../../lib/server/rules-excerpt.js';

const rules: ServicePortRules = {
  spn: servicePortName('default', 'web', 'http'),
  protocol: 'TCP',
  portals: [{ ip: '10.96.0.10', port: 80, kind: 'clusterIP' }],
  nodePort: 0,
  proxyPort: 40001,
};
const context: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: '192.0.2.1', hostIPv6: undefined, nodePortIPs: undefined };

test('the rules excerpt: the rules of one port with the jumps and map lookups that lead to them, nothing of another port', (t) => {
  const other: ServicePortRules = { ...rules, spn: servicePortName('default', 'db', 'sql'), portals: [{ ip: '10.96.0.11', port: 5432, kind: 'clusterIP' }], proxyPort: 40002 };
  const ipt = rulesExcerpt(new IptablesRules().render([rules, other], context), 'default/web:http').map((k) => k.line);
  t.true(ipt.some((l) => l.startsWith('-I PREROUTING 1') && l.endsWith('-j KUBE-PORTALS-CONTAINER')));
  t.true(ipt.some((l) => l.startsWith('-A KUBE-PORTALS-CONTAINER -d 10.96.0.10/32')));
  t.is(ipt[0], '# iptables-restore --noflush (IPv4)');
  t.false(ipt.some((l) => l.includes('default/db:sql') || l.includes('40002')));
  t.false(
    ipt.some((l) => l.includes('ip6tables')),
    'no IPv6 header without IPv6 rules of this port',
  );
  const nft = rulesExcerpt(new NftablesRules().render([rules, other], context), 'default/web:http').map((k) => k.line.trim());
  t.deepEqual(nft.slice(0, 2), ['table inet kube-userspace-proxy {', 'map portals-v4 {']);
  t.true(nft[2]!.startsWith('10.96.0.10 . tcp . 80 comment "default/web:http" : 40001'));
  t.true(nft.some((l) => l.includes('map @portals-v4')));
  t.false(nft.some((l) => l.includes('default/db:sql')));
});
