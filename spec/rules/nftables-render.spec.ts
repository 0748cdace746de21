import test from 'ava';
import { servicePortName } from '../../lib/model/service-port-name.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import type { ServicePortRules } from '../../lib/rules/rule-backend.js';
import { ANY, FIXTURE, SPECIFIC } from './rule-fixtures.js';

test('renders one inet table whose maps hold the services, for a proxy bound to the any-address: REDIRECT for pods, DNAT to its own source address for the node', (t) => {
  t.is(
    new NftablesRules().render(FIXTURE, ANY),
    `add table inet kube-userspace-proxy
delete table inet kube-userspace-proxy
table inet kube-userspace-proxy {
	map portals-v4 {
		type ipv4_addr . inet_proto . inet_service : inet_service
		elements = {
			10.96.0.1 . tcp . 443 comment "default/kubernetes:https" : 36000,
			10.96.0.53 . udp . 53 comment "kube-system/kube-dns:dns" : 36002,
			10.96.0.10 . tcp . 80 comment "web/frontend:http" : 36001,
			198.51.100.9 . tcp . 80 comment "web/frontend:http" : 36001
		}
	}

	map externals-v4 {
		type ipv4_addr . inet_proto . inet_service : inet_service
		elements = {
			203.0.113.7 . tcp . 80 comment "web/frontend:http" : 36001
		}
	}

	map nodeports-v4 {
		type inet_proto . inet_service : inet_service
		elements = {
			udp . 30053 comment "kube-system/kube-dns:dns" : 36002,
			tcp . 30080 comment "web/frontend:http" : 36001
		}
	}

	map portals-v6 {
		type ipv6_addr . inet_proto . inet_service : inet_service
		elements = {
			fd00:96::53 . udp . 53 comment "kube-system/kube-dns:dns" : 36002,
			fd00:96::10 . tcp . 80 comment "web/frontend:http" : 36001
		}
	}

	map externals-v6 {
		type ipv6_addr . inet_proto . inet_service : inet_service
	}

	map nodeports-v6 {
		type inet_proto . inet_service : inet_service
		elements = {
			udp . 30053 comment "kube-system/kube-dns:dns" : 36002,
			tcp . 30080 comment "web/frontend:http" : 36001
		}
	}

	set no-endpoints {
		type inet_proto . inet_service
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		meta l4proto { tcp, udp } redirect to : ip daddr . meta l4proto . th dport map @portals-v4 comment "IPv4 ClusterIPs and LoadBalancer IPs from pods and other hosts"
		meta l4proto { tcp, udp } redirect to : ip daddr . meta l4proto . th dport map @externals-v4 comment "IPv4 external IPs from pods and other hosts"
		meta nfproto ipv4 fib daddr type local meta l4proto { tcp, udp } redirect to : meta l4proto . th dport map @nodeports-v4 comment "IPv4 NodePorts from pods and other hosts"
		meta l4proto { tcp, udp } redirect to : ip6 daddr . meta l4proto . th dport map @portals-v6 comment "IPv6 ClusterIPs and LoadBalancer IPs from pods and other hosts"
		meta l4proto { tcp, udp } redirect to : ip6 daddr . meta l4proto . th dport map @externals-v6 comment "IPv6 external IPs from pods and other hosts"
		meta nfproto ipv6 fib daddr type local meta l4proto { tcp, udp } redirect to : meta l4proto . th dport map @nodeports-v6 comment "IPv6 NodePorts from pods and other hosts"
	}

	chain output {
		type nat hook output priority -100; policy accept;
		meta l4proto { tcp, udp } dnat ip to ip saddr : ip daddr . meta l4proto . th dport map @portals-v4 comment "IPv4 ClusterIPs and LoadBalancer IPs from this node"
		meta nfproto ipv4 fib daddr type local meta l4proto { tcp, udp } dnat ip to ip saddr : ip daddr . meta l4proto . th dport map @externals-v4 comment "IPv4 external IPs from this node"
		meta nfproto ipv4 fib daddr type local meta l4proto { tcp, udp } dnat ip to ip saddr : meta l4proto . th dport map @nodeports-v4 comment "IPv4 NodePorts from this node"
		meta l4proto { tcp, udp } dnat ip6 to ip6 saddr : ip6 daddr . meta l4proto . th dport map @portals-v6 comment "IPv6 ClusterIPs and LoadBalancer IPs from this node"
		meta nfproto ipv6 fib daddr type local meta l4proto { tcp, udp } dnat ip6 to ip6 saddr : ip6 daddr . meta l4proto . th dport map @externals-v6 comment "IPv6 external IPs from this node"
		meta nfproto ipv6 fib daddr type local meta l4proto { tcp, udp } dnat ip6 to ip6 saddr : meta l4proto . th dport map @nodeports-v6 comment "IPv6 NodePorts from this node"
	}

	chain no-endpoints {
		type filter hook input priority filter; policy accept;
		ct state new meta l4proto tcp meta l4proto . th dport @no-endpoints reject with tcp reset comment "TCP service ports without endpoints"
		ct state new meta l4proto udp meta l4proto . th dport @no-endpoints reject comment "UDP service ports without endpoints"
	}
}
`,
  );
});

test('a specific --bind-address DNATs to it, --nodeport-addresses become a set, and the family without a listener gets no rules', (t) => {
  t.is(
    new NftablesRules().render(FIXTURE, SPECIFIC),
    `add table inet kube-userspace-proxy
delete table inet kube-userspace-proxy
table inet kube-userspace-proxy {
	map portals-v4 {
		type ipv4_addr . inet_proto . inet_service : inet_service
		elements = {
			10.96.0.1 . tcp . 443 comment "default/kubernetes:https" : 36000,
			10.96.0.53 . udp . 53 comment "kube-system/kube-dns:dns" : 36002,
			10.96.0.10 . tcp . 80 comment "web/frontend:http" : 36001,
			198.51.100.9 . tcp . 80 comment "web/frontend:http" : 36001
		}
	}

	map externals-v4 {
		type ipv4_addr . inet_proto . inet_service : inet_service
		elements = {
			203.0.113.7 . tcp . 80 comment "web/frontend:http" : 36001
		}
	}

	set nodeport-ips-v4 {
		type ipv4_addr
		elements = {
			10.0.0.5,
			192.168.1.5
		}
	}

	map nodeports-v4 {
		type inet_proto . inet_service : inet_service
		elements = {
			udp . 30053 comment "kube-system/kube-dns:dns" : 36002,
			tcp . 30080 comment "web/frontend:http" : 36001
		}
	}

	map portals-v6 {
		type ipv6_addr . inet_proto . inet_service : inet_service
		elements = {
			fd00:96::53 . udp . 53 comment "kube-system/kube-dns:dns" : 36002,
			fd00:96::10 . tcp . 80 comment "web/frontend:http" : 36001
		}
	}

	map externals-v6 {
		type ipv6_addr . inet_proto . inet_service : inet_service
	}

	set nodeport-ips-v6 {
		type ipv6_addr
		elements = {
			fd00::5
		}
	}

	map nodeports-v6 {
		type inet_proto . inet_service : inet_service
		elements = {
			udp . 30053 comment "kube-system/kube-dns:dns" : 36002,
			tcp . 30080 comment "web/frontend:http" : 36001
		}
	}

	set no-endpoints {
		type inet_proto . inet_service
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		meta l4proto { tcp, udp } dnat ip to 10.0.0.5 : ip daddr . meta l4proto . th dport map @portals-v4 comment "IPv4 ClusterIPs and LoadBalancer IPs from pods and other hosts"
		meta l4proto { tcp, udp } dnat ip to 10.0.0.5 : ip daddr . meta l4proto . th dport map @externals-v4 comment "IPv4 external IPs from pods and other hosts"
		ip daddr @nodeport-ips-v4 meta l4proto { tcp, udp } dnat ip to 10.0.0.5 : meta l4proto . th dport map @nodeports-v4 comment "IPv4 NodePorts from pods and other hosts"
	}

	chain output {
		type nat hook output priority -100; policy accept;
		meta l4proto { tcp, udp } dnat ip to 10.0.0.5 : ip daddr . meta l4proto . th dport map @portals-v4 comment "IPv4 ClusterIPs and LoadBalancer IPs from this node"
		meta nfproto ipv4 fib daddr type local meta l4proto { tcp, udp } dnat ip to 10.0.0.5 : ip daddr . meta l4proto . th dport map @externals-v4 comment "IPv4 external IPs from this node"
		ip daddr @nodeport-ips-v4 meta l4proto { tcp, udp } dnat ip to 10.0.0.5 : meta l4proto . th dport map @nodeports-v4 comment "IPv4 NodePorts from this node"
	}

	chain no-endpoints {
		type filter hook input priority filter; policy accept;
		ct state new meta l4proto tcp meta l4proto . th dport @no-endpoints reject with tcp reset comment "TCP service ports without endpoints"
		ct state new meta l4proto udp meta l4proto . th dport @no-endpoints reject comment "UDP service ports without endpoints"
	}
}
`,
  );
});

test('the rule count does not grow with the number of services; only map elements do', (t) => {
  const many: ServicePortRules[] = Array.from({ length: 500 }, (_, i) => ({
    spn: servicePortName('ns', `svc-${i}`, 'http'),
    protocol: 'TCP',
    portals: [{ ip: `10.97.${i >> 8}.${i & 255}`, port: 80, kind: 'clusterIP' }],
    nodePort: 30000 + i,
    proxyPort: 40000 + i,
  }));
  const rulesOf = (text: string): number => text.split('\n').filter((l) => /^\t\t(meta|ip|ip6) /.test(l)).length;
  const backend = new NftablesRules();
  t.is(rulesOf(backend.render(many.slice(0, 1), ANY)), 12);
  t.is(rulesOf(backend.render(many, ANY)), 12);
});

test('element comments are cut to the 128 characters nft accepts', (t) => {
  const long: ServicePortRules = {
    spn: servicePortName('n'.repeat(63), 's'.repeat(63), 'p'.repeat(15)),
    protocol: 'UDP',
    portals: [{ ip: '10.96.0.99', port: 53, kind: 'clusterIP' }],
    nodePort: 0,
    proxyPort: 40000,
  };
  const comment = /10\.96\.0\.99 \. udp \. 53 comment "([^"]*)"/.exec(new NftablesRules().render([long], ANY))![1]!;
  t.is(comment.length, 128);
});
