import test from 'ava';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import { endpointAddressFilter, filterEndpointAddresses, refusedAddressReason, validateRefusedCidrs } from '../../lib/source/endpoint-address-filter.js';

test('refuses loopback, link-local, metadata and unspecified addresses', (t) => {
  const cases: Record<string, string | undefined> = {
    '127.0.0.1': 'loopback address',
    '127.255.0.9': 'loopback address',
    '::1': 'loopback address',
    '::ffff:127.0.0.1': 'loopback address',
    '::ffff:7f00:1': 'loopback address',
    '169.254.169.254': 'cloud metadata address (instance metadata service)',
    'fd00:ec2::254': 'cloud metadata address (AWS instance metadata service, IPv6)',
    '::ffff:169.254.169.254': 'cloud metadata address (instance metadata service)',
    '100.100.100.200': 'cloud metadata address (Alibaba Cloud ECS metadata)',
    '168.63.129.16': 'cloud metadata address (Azure WireServer)',
    '169.254.170.2': 'cloud metadata address (AWS ECS task metadata and credentials)',
    '169.254.170.23': 'cloud metadata address (AWS EKS Pod Identity credentials)',
    'fd00:ec2::23': 'cloud metadata address (AWS EKS Pod Identity credentials, IPv6)',
    '169.254.169.123': 'cloud metadata address (AWS Time Sync Service)',
    '100.100.100.201': undefined,
    '168.63.129.17': undefined,
    '169.254.1.1': 'link-local address',
    'fe80::1': 'link-local address',
    'febf::1': 'link-local address',
    '224.0.0.251': 'link-local multicast address',
    'ff02::fb': 'link-local multicast address',
    '0.0.0.0': 'unspecified address',
    '::': 'unspecified address',
    '10.0.0.1': undefined,
    '192.168.1.1': undefined,
    '100.64.0.1': undefined,
    '2001:db8::1': undefined,
    'fd00:ec2::253': undefined,
    'fec0::1': undefined,
    'db.example.com': undefined,
  };
  for (const [address, reason] of Object.entries(cases)) t.is(refusedAddressReason(address), reason, address);
});

test('drops refused addresses and endpoints left with none, keeps the rest of the slice', (t) => {
  const endpoint = (addresses: string[], nodeName: string) => ({ addresses, ready: true, serving: true, terminating: false, nodeName, zone: '', hints: undefined, hostname: '' });
  const slice: EndpointSliceSpec = {
    namespace: 'default',
    name: 's',
    serviceName: 'svc',
    addressType: 'IPv4',
    ports: [{ name: '', protocol: 'TCP', port: 80 }],
    endpoints: [endpoint(['10.0.0.1'], 'a'), endpoint(['127.0.0.1'], 'b'), endpoint(['10.0.0.2', '169.254.169.254'], 'c')],
  };
  const { slice: filtered, refused } = filterEndpointAddresses(slice);
  t.deepEqual(filtered.endpoints, [endpoint(['10.0.0.1'], 'a'), endpoint(['10.0.0.2'], 'c')]);
  t.deepEqual(filtered.ports, slice.ports);
  t.deepEqual(refused, [
    { address: '127.0.0.1', reason: 'loopback address' },
    { address: '169.254.169.254', reason: 'cloud metadata address (instance metadata service)' },
  ]);
  const clean = { ...slice, endpoints: [endpoint(['10.0.0.1'], 'a')] };
  t.is(filterEndpointAddresses(clean).slice, clean);
});

test("operator ranges and this node's own listeners are refused too; bad ranges are named", (t) => {
  const endpoint = (addresses: string[]) => ({ addresses, ready: true, serving: true, terminating: false, nodeName: 'n', zone: '', hints: undefined, hostname: '' });
  const slice: EndpointSliceSpec = {
    namespace: 'default',
    name: 's',
    serviceName: 'svc',
    addressType: 'IPv4',
    ports: [{ name: '', protocol: 'TCP', port: 10256 }],
    endpoints: [endpoint(['10.0.0.1']), endpoint(['10.123.4.5']), endpoint(['192.0.2.10']), endpoint(['192.0.2.11'])],
  };
  const filter = endpointAddressFilter({
    refusedCidrs: ['10.123.0.0/16', '::ffff:198.51.100.0/120'],
    // This node: 192.0.2.10 with its health port 10256; 192.0.2.11 listens on other ports only.
    ownListeners: () => [
      { address: '192.0.2.10', port: 10256 },
      { address: '192.0.2.11', port: 10249 },
    ],
  });
  const { slice: filtered, refused } = filterEndpointAddresses(slice, filter);
  t.deepEqual(
    filtered.endpoints.map((e) => e.addresses[0]),
    ['10.0.0.1', '192.0.2.11'],
  );
  t.deepEqual(refused, [
    { address: '10.123.4.5', reason: 'refused by the operator (10.123.0.0/16)' },
    { address: '192.0.2.10', reason: "this node's own listener (port 10256)" },
  ]);
  t.is(refusedAddressReason('198.51.100.7', false, filter.extra), 'refused by the operator (::ffff:198.51.100.0/120)');
  t.deepEqual(validateRefusedCidrs(['10.0.0.0/8', '192.168.1.5', 'fd00::/64', '10.0.0.0/33', 'nope'], '--refuse-endpoint-cidrs'), [
    '--refuse-endpoint-cidrs: "10.0.0.0/33" is not a CIDR or an IP address (examples: 10.0.0.0/8, 192.168.1.5, fd00::/64)',
    '--refuse-endpoint-cidrs: "nope" is not a CIDR or an IP address (examples: 10.0.0.0/8, 192.168.1.5, fd00::/64)',
  ]);
});
