import test from 'ava';
import type { EndpointSliceSpec } from '../../lib/model/endpoint-slice.js';
import { filterEndpointAddresses, refusedAddressReason } from '../../lib/source/endpoint-address-filter.js';

test('refuses loopback, link-local, metadata and unspecified addresses', (t) => {
  const cases: Record<string, string | undefined> = {
    '127.0.0.1': 'loopback address',
    '127.255.0.9': 'loopback address',
    '::1': 'loopback address',
    '::ffff:127.0.0.1': 'loopback address',
    '::ffff:7f00:1': 'loopback address',
    '169.254.169.254': 'cloud metadata address',
    'fd00:ec2::254': 'cloud metadata address',
    '::ffff:169.254.169.254': 'cloud metadata address',
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
  const endpoint = (addresses: string[], nodeName: string) => ({ addresses, ready: true, serving: true, terminating: false, nodeName, hostname: '' });
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
    { address: '169.254.169.254', reason: 'cloud metadata address' },
  ]);
  const clean = { ...slice, endpoints: [endpoint(['10.0.0.1'], 'a')] };
  t.is(filterEndpointAddresses(clean).slice, clean);
});
