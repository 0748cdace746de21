import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { parseFlags } from '../../lib/config/flags.js';
import { parseNodeLabels } from '../../lib/config/node-labels.js';

test("kubelet's K=V,K2=V2 syntax; empty values and spaces around pairs are fine", (t) => {
  t.deepEqual(parseNodeLabels('topology.kubernetes.io/zone=zone-a, rack=r_1.b ,empty='), { labels: { 'topology.kubernetes.io/zone': 'zone-a', rack: 'r_1.b', empty: '' } });
  t.deepEqual(parseNodeLabels(''), { labels: {} });
});

test('every bad pair is named', (t) => {
  t.deepEqual(parseNodeLabels('zone,Bad_Prefix/x=1,a=b c,a=1,a=2'), {
    problems: [
      '"zone" is not KEY=VALUE',
      'label key "Bad_Prefix/x": the prefix must be a DNS subdomain',
      'value "b c" of a must be at most 63 letters, digits, -, _ and ., starting and ending with a letter or digit',
      'a given twice',
    ],
  });
  t.deepEqual(parseNodeLabels(`${'k'.repeat(64)}=v`), {
    problems: [`label key "${'k'.repeat(64)}": the name must be at most 63 letters, digits, -, _ and ., starting and ending with a letter or digit`],
  });
});

test('--node-labels reaches the Config; a bad one is a flag problem', (t) => {
  const parsed = parseFlags(['--manifests', 'x', '--node-labels', 'topology.kubernetes.io/zone=zone-a']);
  t.is(parsed.action, 'run');
  if (parsed.action === 'run') t.deepEqual(parsed.config.nodeLabels, { 'topology.kubernetes.io/zone': 'zone-a' });
  const plain = parseFlags(['--manifests', 'x']);
  if (plain.action === 'run') t.deepEqual(plain.config.nodeLabels, {});
  const err = t.throws(() => parseFlags(['--manifests', 'x', '--node-labels', 'zone']), { instanceOf: InvalidConfigError });
  t.deepEqual(err.problems, ['--node-labels: "zone" is not KEY=VALUE']);
});
