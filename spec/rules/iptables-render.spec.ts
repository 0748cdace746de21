import test from 'ava';
import { RulesError } from '../../lib/errors.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { jumpRepairs } from '../../lib/rules/iptables-chains.js';
import { parseChainListing } from '../../lib/rules/iptables-save-parser.js';
import { ANY, DNS, FIXTURE, FRONTEND, KUBERNETES, SPECIFIC } from './rule-fixtures.js';

const PORTALS_JUMP_COMMENT = '-m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules"';
const NODEPORT_JUMP = '-m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain"';

const NAT_HEAD = `*nat
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
-I PREROUTING 1 ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-CONTAINER
-I OUTPUT 1 ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-HOST
-A PREROUTING ${NODEPORT_JUMP} -j KUBE-NODEPORT-CONTAINER
-A OUTPUT ${NODEPORT_JUMP} -j KUBE-NODEPORT-HOST
`;
const FILTER_HEAD = `*filter
:KUBE-NODEPORT-NON-LOCAL - [0:0]
:KUBE-USERSPACE-NO-ENDPOINTS - [0:0]
-I INPUT 1 -m comment --comment "Ensure that non-local NodePort traffic can flow" -j KUBE-NODEPORT-NON-LOCAL
-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "refuse service ports without endpoints" -j KUBE-USERSPACE-NO-ENDPOINTS
`;

test('renders the legacy chains for a proxy bound to the any-address: REDIRECT for pods, DNAT to the host IP for the node', (t) => {
  const text = new IptablesRules().render(FIXTURE, ANY);
  t.is(
    text,
    `# iptables-restore --noflush (IPv4)
${NAT_HEAD}-A KUBE-PORTALS-CONTAINER -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j REDIRECT --to-ports 36000
-A KUBE-PORTALS-CONTAINER -d 10.96.0.53/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 53 -j REDIRECT --to-ports 36002
-A KUBE-PORTALS-CONTAINER -d 10.96.0.10/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j REDIRECT --to-ports 36001
-A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 36001
-A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 36001
-A KUBE-PORTALS-CONTAINER -d 198.51.100.9/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j REDIRECT --to-ports 36001
-A KUBE-PORTALS-HOST -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j DNAT --to-destination 10.0.0.5:36000
-A KUBE-PORTALS-HOST -d 10.96.0.53/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 53 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-PORTALS-HOST -d 10.96.0.10/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-HOST -d 203.0.113.7/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-HOST -d 198.51.100.9/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-NODEPORT-CONTAINER -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j REDIRECT --to-ports 36002
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j REDIRECT --to-ports 36001
-A KUBE-NODEPORT-HOST -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j DNAT --to-destination 10.0.0.5:36001
COMMIT
${FILTER_HEAD}-A KUBE-NODEPORT-NON-LOCAL -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 36002 -m state --state NEW -j ACCEPT
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 36001 -m state --state NEW -j ACCEPT
COMMIT
# ip6tables-restore --noflush (IPv6)
${NAT_HEAD}-A KUBE-PORTALS-CONTAINER -d fd00:96::53/128 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 53 -j REDIRECT --to-ports 36002
-A KUBE-PORTALS-CONTAINER -d fd00:96::10/128 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j REDIRECT --to-ports 36001
-A KUBE-PORTALS-HOST -d fd00:96::53/128 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 53 -j DNAT --to-destination [fd00::5]:36002
-A KUBE-PORTALS-HOST -d fd00:96::10/128 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination [fd00::5]:36001
-A KUBE-NODEPORT-CONTAINER -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j REDIRECT --to-ports 36002
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j REDIRECT --to-ports 36001
-A KUBE-NODEPORT-HOST -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j DNAT --to-destination [fd00::5]:36002
-A KUBE-NODEPORT-HOST -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j DNAT --to-destination [fd00::5]:36001
COMMIT
${FILTER_HEAD}-A KUBE-NODEPORT-NON-LOCAL -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 36002 -m state --state NEW -j ACCEPT
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 36001 -m state --state NEW -j ACCEPT
COMMIT
`,
  );
});

test('renders DNAT to the bind address for a specific --bind-address, NodePorts only on --nodeport-addresses, and no rules for the family without a listener', (t) => {
  const text = new IptablesRules().render(FIXTURE, SPECIFIC);
  t.is(
    text,
    `# iptables-restore --noflush (IPv4)
${NAT_HEAD}-A KUBE-PORTALS-CONTAINER -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j DNAT --to-destination 10.0.0.5:36000
-A KUBE-PORTALS-CONTAINER -d 10.96.0.53/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 53 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-PORTALS-CONTAINER -d 10.96.0.10/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -m physdev ! --physdev-is-in -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-CONTAINER -d 198.51.100.9/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-HOST -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j DNAT --to-destination 10.0.0.5:36000
-A KUBE-PORTALS-HOST -d 10.96.0.53/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 53 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-PORTALS-HOST -d 10.96.0.10/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-HOST -d 203.0.113.7/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-PORTALS-HOST -d 198.51.100.9/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-NODEPORT-CONTAINER -d 10.0.0.5/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-NODEPORT-CONTAINER -d 192.168.1.5/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-NODEPORT-CONTAINER -d 10.0.0.5/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-NODEPORT-CONTAINER -d 192.168.1.5/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-NODEPORT-HOST -d 10.0.0.5/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-NODEPORT-HOST -d 192.168.1.5/32 -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 30053 -j DNAT --to-destination 10.0.0.5:36002
-A KUBE-NODEPORT-HOST -d 10.0.0.5/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j DNAT --to-destination 10.0.0.5:36001
-A KUBE-NODEPORT-HOST -d 192.168.1.5/32 -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 30080 -j DNAT --to-destination 10.0.0.5:36001
COMMIT
${FILTER_HEAD}-A KUBE-NODEPORT-NON-LOCAL -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 36002 -m state --state NEW -j ACCEPT
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 36001 -m state --state NEW -j ACCEPT
COMMIT
# ip6tables-restore --noflush (IPv6)
${NAT_HEAD}COMMIT
${FILTER_HEAD}COMMIT
`,
  );
});

test('rendering depends on the set of rules, not their order, and IPv6 addresses are written the way ip6tables-save prints them', (t) => {
  const backend = new IptablesRules({ families: ['IPv6'] });
  t.is(backend.render([KUBERNETES, DNS, FRONTEND], ANY), backend.render([FRONTEND, KUBERNETES, DNS], ANY));
  t.regex(backend.render([DNS], ANY), /-d fd00:96::53\/128 /);
  t.notRegex(backend.render([DNS], ANY), /10\.96\.0\.53/);
});

test('without a host IP of a family, node-originated traffic of that family gets no rules (there is nothing to DNAT it to)', (t) => {
  const text = new IptablesRules({ families: ['IPv6'] }).render([DNS], { ...ANY, hostIPv6: undefined });
  t.regex(text, /-A KUBE-PORTALS-CONTAINER -d fd00:96::53\/128/);
  t.notRegex(text, /-A KUBE-PORTALS-HOST/);
  t.notRegex(text, /-A KUBE-NODEPORT-HOST/);
});

test('a second service port on a taken portal is dropped, the first (by name) wins', (t) => {
  const clash = { ...KUBERNETES, spn: servicePortName('zzz', 'clash', 'https'), proxyPort: 39999 };
  const text = new IptablesRules({ families: ['IPv4'] }).render([clash, KUBERNETES], ANY);
  t.notRegex(text, /39999/);
  t.regex(text, /default\/kubernetes:https.*--to-ports 36000/);
});

test('malformed input is refused with a RulesError naming the service port', (t) => {
  const backend = new IptablesRules();
  const bad = (rules: object, context = ANY): RulesError => t.throws(() => backend.render([rules as never], context), { instanceOf: RulesError })!;
  t.regex(bad({ ...KUBERNETES, portals: [{ ip: '10.96.0.300', port: 443, kind: 'clusterIP' }] }).message, /default\/kubernetes:https: invalid clusterIP/);
  t.regex(bad({ ...KUBERNETES, proxyPort: 0 }).message, /proxy port 0 is not in 1-65535/);
  t.regex(bad({ ...KUBERNETES, protocol: 'SCTP' }).message, /unsupported protocol/);
  t.is(bad(KUBERNETES, { ...ANY, bindAddress: '127.0.0.1' }).code, 'KUP_ERR_RULES');
  t.regex(bad(KUBERNETES, { ...ANY, hostIPv4: 'fd00::1' }).message, /hostIPv4/);
});

test('jump repair: nothing to do when each jump is there once, in order', (t) => {
  const listing = `-P PREROUTING ACCEPT
-A PREROUTING ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-CONTAINER
-A PREROUTING -j DOCKER
-A PREROUTING ${NODEPORT_JUMP} -j KUBE-NODEPORT-CONTAINER
`;
  t.deepEqual(jumpRepairs('PREROUTING', parseChainListing(listing)), []);
});

test('jump repair: duplicates and foreign jumps to our chains go, missing ones come back, a portal jump behind the NodePort jump moves to the front', (t) => {
  const listing = `-P PREROUTING ACCEPT
-A PREROUTING ${NODEPORT_JUMP} -j KUBE-NODEPORT-CONTAINER
-A PREROUTING ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-CONTAINER
-A PREROUTING ${NODEPORT_JUMP} -j KUBE-NODEPORT-CONTAINER
-A PREROUTING -m comment --comment "old version" -j KUBE-NODEPORT-CONTAINER
`;
  t.deepEqual(jumpRepairs('PREROUTING', parseChainListing(listing)), [
    `-D PREROUTING ${NODEPORT_JUMP} -j KUBE-NODEPORT-CONTAINER`,
    '-D PREROUTING -m comment --comment "old version" -j KUBE-NODEPORT-CONTAINER',
    `-D PREROUTING ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-CONTAINER`,
    `-I PREROUTING 1 ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-CONTAINER`,
  ]);
  t.deepEqual(jumpRepairs('OUTPUT', []), [`-I OUTPUT 1 ${PORTALS_JUMP_COMMENT} -j KUBE-PORTALS-HOST`, `-A OUTPUT ${NODEPORT_JUMP} -j KUBE-NODEPORT-HOST`]);
});
