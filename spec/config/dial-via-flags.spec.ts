import test from 'ava';
import { parseFlags } from '../../lib/config/flags.js';
import { InvalidConfigError } from '../../lib/errors.js';

// --dial-via, --namespace and --selector: parsing and the problems named.

function run(argv: string[]) {
  const parsed = parseFlags(argv);
  if (parsed.action !== 'run') throw new Error(`expected run, got ${parsed.action}`);
  return parsed.config;
}

function problems(argv: string[]): readonly string[] {
  try {
    parseFlags(argv);
  } catch (err) {
    if (err instanceof InvalidConfigError) return err.problems;
    throw err;
  }
  throw new Error(`no problem with ${argv.join(' ')}`);
}

test('defaults: direct dials, every namespace, every Service', (t) => {
  const c = run(['--manifests', 'a.yaml']);
  t.is(c.dialVia, 'direct');
  t.deepEqual(c.namespaces, []);
  t.is(c.selector, '');
});

test('--dial-via port-forward with the API source; --namespace repeatable and comma-separated; --selector kept as given', (t) => {
  const c = run(['--kubeconfig', '/k', '--dial-via', 'port-forward', '--namespace', 'shop, tools', '--namespace', 'web,shop', '--selector', ' app in (a,b),!legacy ']);
  t.is(c.dialVia, 'port-forward');
  t.deepEqual(c.namespaces, ['shop', 'tools', 'web']);
  t.is(c.selector, 'app in (a,b),!legacy');
  t.is(run(['--dial-via', 'port-forward']).dialVia, 'port-forward', 'the default API source will do');
});

test('--namespace and --selector apply with manifests too', (t) => {
  const c = run(['--manifests', 'a.yaml', '--namespace', 'shop', '--selector', 'tier=web']);
  t.deepEqual([c.namespaces, c.selector], [['shop'], 'tier=web']);
});

test('problems are named: port-forward with manifests, a bad mode, namespace or selector', (t) => {
  t.deepEqual(problems(['--manifests', 'a.yaml', '--dial-via', 'port-forward']), [
    '--dial-via port-forward needs the Kubernetes API as the source (--kubeconfig, --master or the defaults), not --manifests: manifests name no API server to forward through',
  ]);
  t.deepEqual(problems(['--dial-via', 'tunnel', '--namespace', 'Shop,ok,-x', '--selector', 'app in orders']), [
    '--dial-via: expected direct or port-forward, got "tunnel"',
    '--namespace: "Shop" is not a namespace name (a DNS label: lower-case letters, digits and \'-\', at most 63)',
    '--namespace: "-x" is not a namespace name (a DNS label: lower-case letters, digits and \'-\', at most 63)',
    '--selector: "app in orders": expected key, !key, key=value, key==value, key!=value, key in (v1,v2) or key notin (v1,v2)',
  ]);
});
