import test from 'ava';
import { RulesError } from '../../lib/errors.js';
import type { IPFamily } from '../../lib/model/ip-address.js';
import type { ServicePortRules } from '../../lib/rules/rule-backend.js';
import { planRules } from '../../lib/rules/rule-plan.js';
import { ANY, DNS, FRONTEND, KUBERNETES } from './rule-fixtures.js';

const ofFamily = (rule: ServicePortRules, family: IPFamily, proxyPort: number): ServicePortRules => ({
  ...rule,
  family,
  proxyPort,
  portals: rule.portals.filter((p) => p.ip.includes(':') === (family === 'IPv6')),
});

test("a node port of a family-split service port goes to that family's listener only; an unsplit one to both families", (t) => {
  const plan = planRules([ofFamily(FRONTEND, 'IPv4', 36001), ofFamily(FRONTEND, 'IPv6', 36011), DNS], ANY);
  const nodePorts = (family: IPFamily): string[] => plan[family].nodePorts.map((n) => `${n.protocol} ${n.nodePort} → ${n.proxyPort}`);
  t.deepEqual(nodePorts('IPv4'), ['udp 30053 → 36002', 'tcp 30080 → 36001']);
  t.deepEqual(nodePorts('IPv6'), ['udp 30053 → 36002', 'tcp 30080 → 36011']);
  t.deepEqual(plan.dropped, []);
  t.true(
    plan.IPv6.portals.every((p) => p.proxyPort !== 36001),
    'no IPv6 portal goes to the IPv4 listener',
  );
});

test('a node port taken in one family is dropped in that family only', (t) => {
  const other = { ...KUBERNETES, nodePort: 30080 };
  const plan = planRules([ofFamily(FRONTEND, 'IPv6', 36011), other], ANY);
  t.deepEqual(
    plan.IPv4.nodePorts.map((n) => n.spn),
    ['default/kubernetes:https'],
  );
  t.deepEqual(
    plan.IPv6.nodePorts.map((n) => n.spn),
    ['default/kubernetes:https'],
  );
  t.deepEqual(
    plan.dropped.map((d) => d.reason),
    ['IPv6 node port tcp 30080 already taken'],
  );
});

test('ports without endpoints are planned as rejects, once per listener, in both families', (t) => {
  const plan = planRules([{ ...DNS, noEndpoints: true }, { ...FRONTEND, noEndpoints: false }, KUBERNETES], ANY);
  t.deepEqual(plan.IPv4.rejects, [{ spn: 'kube-system/kube-dns:dns', protocol: 'udp', proxyPort: 36002 }]);
  t.deepEqual(plan.IPv6.rejects, plan.IPv4.rejects);
});

test('an unknown family is refused with a RulesError naming the service port', (t) => {
  const err = t.throws(() => planRules([{ ...FRONTEND, family: 'IPv5' as IPFamily }], ANY), { instanceOf: RulesError });
  t.regex(err.message, /web\/frontend:http: unknown family "IPv5"/);
});
