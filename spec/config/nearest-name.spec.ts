import test from 'ava';
import { nearestName } from '../../lib/config/nearest-name.js';

const FLAGS = ['manifests', 'metrics-bind-address', 'healthz-bind-address', 'bind-address', 'v', 'config', 'cleanup'];

test('a close misspelling finds the flag that was meant', (t) => {
  t.is(nearestName('manifest', FLAGS), 'manifests');
  t.is(nearestName('metrics-bind-adress', FLAGS), 'metrics-bind-address');
  t.is(nearestName('bind-adress', FLAGS), 'bind-address');
  // Two letters swapped is one slip of the fingers.
  t.is(nearestName('cleanpu', FLAGS), 'cleanup');
});

test('an unrelated name suggests nothing, short names included', (t) => {
  t.is(nearestName('bogus', FLAGS), undefined);
  t.is(nearestName('x', FLAGS), undefined);
  t.is(nearestName('h', FLAGS), undefined);
  t.is(nearestName('metrics', FLAGS), undefined);
});

test('the closest candidate wins; a tie goes to the earlier one', (t) => {
  t.is(nearestName('confi', ['cleanup', 'config']), 'config');
  t.is(nearestName('abcd', ['abce', 'abcf']), 'abce');
  t.is(nearestName('abcd', ['abcf', 'abce']), 'abcf');
});
