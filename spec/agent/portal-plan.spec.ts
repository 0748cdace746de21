import test from 'ava';
import { LocalAddresses } from '../../lib/agent/local-addresses.js';
import { directPlan, familiesOf, groupKey, groupsOf, portalsOf, redirectPlan } from '../../lib/agent/portal-plan.js';
import type { PlanContext } from '../../lib/agent/portal-plan.js';
import type { ServicePortSpec, ServiceSpec } from '../../lib/model/service.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { serviceSpec } from '../helpers/service-spec.js';

const HTTP: ServicePortSpec = { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 };

function svc(extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return serviceSpec({ type: 'NodePort', ports: [HTTP], ...extra });
}

const DUAL = svc({ clusterIPs: ['10.96.0.10', 'fd00:96::10'], externalIPs: ['203.0.113.7', '2001:db8::7'] });
const SPN = servicePortName('default', 'web', 'http');
const local = new LocalAddresses();
const ctx = (extra: Partial<PlanContext> = {}): PlanContext => ({ bindAddress: '0.0.0.0', local, nodePortIPs: undefined, ipv6: true, ...extra });

test('a single-stack service port is one group with its plain key; a dual-stack one is split by family, primary first', (t) => {
  t.deepEqual(groupsOf(svc(), HTTP), [{ scope: 'all', family: undefined }]);
  t.is(groupKey(SPN, { scope: 'all', family: undefined }), SPN);
  t.deepEqual(familiesOf(DUAL), ['IPv4', 'IPv6']);
  t.deepEqual(familiesOf(svc({ clusterIPs: ['fd00:96::10', '10.96.0.10'] })), ['IPv6', 'IPv4']);
  t.deepEqual(
    groupsOf(DUAL, HTTP).map((g) => groupKey(SPN, g)),
    ['default/web:http (IPv4)', 'default/web:http (IPv6)'],
  );
});

test('scopes and families multiply: Local external traffic on a dual-stack service gives four sockets', (t) => {
  const split = svc({ ...DUAL, externalTrafficPolicy: 'Local' });
  t.deepEqual(
    groupsOf(split, HTTP).map((g) => groupKey(SPN, g)),
    ['default/web:http (internal, IPv4)', 'default/web:http (internal, IPv6)', 'default/web:http (external, IPv4)', 'default/web:http (external, IPv6)'],
  );
});

test("each family group has only its own family's portals", (t) => {
  const ips = (family?: 'IPv4' | 'IPv6', scope: 'all' | 'internal' | 'external' = 'all'): string[] => portalsOf(DUAL, HTTP, scope, family).map((p) => p.ip);
  t.deepEqual(ips(), ['10.96.0.10', 'fd00:96::10', '203.0.113.7', '2001:db8::7']);
  t.deepEqual(ips('IPv4'), ['10.96.0.10', '203.0.113.7']);
  t.deepEqual(ips('IPv6'), ['fd00:96::10', '2001:db8::7']);
  t.deepEqual(ips('IPv6', 'external'), ['2001:db8::7']);
});

test("none mode: NodePorts listen in both families — one dual-stack socket for a single-stack service, each family's any-address for a dual-stack one", (t) => {
  const nodePorts = (plan: ReturnType<typeof directPlan>): unknown[] => plan.listen.filter((a) => a.port === HTTP.nodePort);
  t.deepEqual(nodePorts(directPlan(svc(), HTTP, ctx())), [{ host: '::', port: 30080 }], 'single-stack on a node with IPv6');
  t.deepEqual(nodePorts(directPlan(svc(), HTTP, ctx({ ipv6: false }))), [{ host: '0.0.0.0', port: 30080 }], 'a node without IPv6 cannot bind ::');
  const [v4, v6] = groupsOf(DUAL, HTTP) as [ReturnType<typeof groupsOf>[0], ReturnType<typeof groupsOf>[0]];
  t.deepEqual(nodePorts(directPlan(DUAL, HTTP, ctx(), v4)), [{ host: '0.0.0.0', port: 30080 }]);
  t.deepEqual(nodePorts(directPlan(DUAL, HTTP, ctx(), v6)), [{ host: '::', port: 30080, ipv6Only: true }], 'IPV6_V6ONLY, beside the IPv4 socket');
  t.deepEqual(nodePorts(directPlan(DUAL, HTTP, ctx({ nodePortIPs: ['192.0.2.5', 'fd00::5'] }), v6)), [{ host: 'fd00::5', port: 30080 }], '--nodeport-addresses of its family only');
});

test("none mode: a dual-stack group whose portal IPs are not local falls back to its own family's any-address, so the two do not collide", (t) => {
  const [v4, v6] = groupsOf(DUAL, HTTP) as [ReturnType<typeof groupsOf>[0], ReturnType<typeof groupsOf>[0]];
  const portals = (plan: ReturnType<typeof directPlan>): unknown[] => plan.listen.filter((a) => a.port === HTTP.port);
  t.deepEqual(portals(directPlan(DUAL, HTTP, ctx(), v4)), [{ host: '0.0.0.0', port: 80 }]);
  t.deepEqual(portals(directPlan(DUAL, HTTP, ctx(), v6)), [{ host: '::', port: 80, ipv6Only: true }]);
  const loopback = svc({ clusterIPs: ['127.0.0.9', '::1'] });
  t.deepEqual(portals(directPlan(loopback, HTTP, ctx(), groupsOf(loopback, HTTP)[1])), [{ host: '::1', port: 80 }], 'a local portal IP is bound as such');
});

test('rules modes: the IPv6 group and a single-stack NodePort on a node with IPv6 listen on ::, an IPv4 group on 0.0.0.0', (t) => {
  const [v4, v6] = groupsOf(DUAL, HTTP) as [ReturnType<typeof groupsOf>[0], ReturnType<typeof groupsOf>[0]];
  t.deepEqual(redirectPlan(DUAL, HTTP, ctx(), v4).listen, [{ host: '0.0.0.0', port: 0 }]);
  t.deepEqual(redirectPlan(DUAL, HTTP, ctx(), v6).listen, [{ host: '::', port: 0 }]);
  t.deepEqual(redirectPlan(svc(), HTTP, ctx()).listen, [{ host: '::', port: 0 }], 'IPv6 NodePort traffic must reach it');
  t.deepEqual(redirectPlan(svc(), HTTP, ctx({ ipv6: false })).listen, [{ host: '0.0.0.0', port: 0 }]);
  t.deepEqual(redirectPlan(svc(), { ...HTTP, nodePort: 0 }, ctx()).listen, [{ host: '0.0.0.0', port: 0 }], 'no NodePort, no IPv6 portal: IPv4 only');
  t.deepEqual(redirectPlan(svc(), HTTP, ctx({ bindAddress: '10.0.0.5' })).listen, [{ host: '10.0.0.5', port: 0 }], 'a specific bind address is kept');
});
