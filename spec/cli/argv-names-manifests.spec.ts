import test from 'ava';
import { argvNamesManifests } from '../../lib/cli/argv-names-manifests.js';

test('manifests named on the command line, in either form and after local, start the parse early', (t) => {
  t.true(argvNamesManifests(['--manifests', '/etc/kup']));
  t.true(argvNamesManifests(['--log-level', 'warn', '--manifests=/etc/kup']));
  t.true(argvNamesManifests(['local', '--manifests', 'm.yaml']));
});

test('the API, the status command and look-alike flags do not', (t) => {
  t.false(argvNamesManifests([]));
  t.false(argvNamesManifests(['--kubeconfig', '/root/.kube/config']));
  t.false(argvNamesManifests(['status', '--manifests', 'x']));
  t.false(argvNamesManifests(['--manifests-dir', 'x']));
  t.false(argvNamesManifests(['--config', 'kup.yaml']));
});
