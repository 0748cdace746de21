import test from 'ava';
import { AddressAssigner } from '../../lib/rules/address-assigner.js';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import { redirectModeName } from '../../lib/rules/redirect-mode-name.js';

// Constructing the backends only validates their options: nothing here touches the network stack.
test('a rule backend is named by its mode', (t) => {
  t.is(redirectModeName(new IptablesRules(), undefined), 'iptables');
  t.is(redirectModeName(new NftablesRules(), undefined), 'nftables');
});

test('without rules, the address assigner names its interface', (t) => {
  t.is(redirectModeName(undefined, new AddressAssigner()), 'none --assign-service-ips=lo');
  t.is(redirectModeName(undefined, new AddressAssigner({ interface: 'kup0' })), 'none --assign-service-ips=kup0');
});

test('neither rules nor addresses is none', (t) => {
  t.is(redirectModeName(undefined, undefined), 'none');
});
