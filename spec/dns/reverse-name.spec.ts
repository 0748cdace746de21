import test from 'ava';
import { endpointLabel, isReverseName, reverseName } from '../../lib/dns/reverse-name.js';

test('reverse names: IPv4 octets and IPv6 nibbles, reversed', (t) => {
  t.is(reverseName('10.96.0.1'), '1.0.96.10.in-addr.arpa');
  t.is(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
  t.true(isReverseName('1.0.96.10.in-addr.arpa'));
  t.false(isReverseName('in-addr.arpa.example.com'));
});

test('an endpoint without a hostname is named by its address, a valid DNS label for both families', (t) => {
  t.is(endpointLabel('10.1.0.5'), '10-1-0-5');
  t.is(endpointLabel('fd00::1'), 'fd00-0-0-0-0-0-0-1');
  t.is(endpointLabel('::1'), '0-0-0-0-0-0-0-1');
});
