import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { parseFlags } from '../../lib/config/flags.js';
import { localArgv } from '../../lib/cli/local-command.js';

const user = { isRoot: false };
const root = { isRoot: true };

/** The agent's configuration for `local ARGV`, through the same parser the agent uses. */
function configOf(argv: string[], env = user) {
  const parsed = parseFlags(localArgv(argv, env).argv, { isTTY: false });
  if (parsed.action !== 'run') throw new Error(`expected run, got ${parsed.action}`);
  return parsed.config;
}

test('local --manifests: a pool, the DNS server on 127.0.0.1:1053, redirect none, direct dials, loopback health and metrics, no hosts file for a user', (t) => {
  const plan = localArgv(['--manifests', 'shop.yaml'], user);
  t.is(plan.source, 'manifests');
  t.is(plan.hostsFile, undefined);
  const c = configOf(['--manifests', 'shop.yaml']);
  t.deepEqual([...c.manifests], ['shop.yaml']);
  t.is(c.serviceIPPool, '127.1.0.0/16');
  t.is(c.dnsBindAddress, '127.0.0.1:1053');
  t.is(c.redirect, 'none');
  t.is(c.dialVia, 'direct');
  t.is(c.healthzBindAddress, '127.0.0.1:10256');
  t.is(c.metricsBindAddress, '127.0.0.1:10249');
  t.is(c.hostsFile, undefined);
});

test('local as root also keeps the names in /etc/hosts', (t) => {
  t.is(localArgv(['--manifests', 'm'], root).hostsFile, '/etc/hosts');
  t.is(configOf(['--manifests', 'm'], root).hostsFile, '/etc/hosts');
});

test('local with a kubeconfig or a context, or neither, is a cluster: endpoints are dialed through port-forward', (t) => {
  for (const argv of [['--kubeconfig', '/k'], ['--context', 'kind-dev'], ['--kubeconfig=/k', '--context=prod'], []]) {
    t.is(localArgv(argv, user).source, 'cluster', argv.join(' '));
    t.is(configOf(argv).dialVia, 'port-forward', argv.join(' '));
  }
  const c = configOf(['--kubeconfig', '/k', '--context', 'kind-dev', '--namespace', 'shop']);
  t.is(c.kubeconfig, '/k');
  t.is(c.kubeContext, 'kind-dev');
  t.deepEqual([...c.namespaces], ['shop']);
});

test("every flag given wins over local's default, in both spellings, and is given once", (t) => {
  const c = configOf(
    [
      '--manifests',
      'm',
      '--service-ip-pool',
      '127.5.0.0/24',
      '--dns-bind-address=127.0.0.2:5300',
      '--healthz-bind-address=',
      '--metrics-bind-address',
      '127.0.0.1:1',
      '--hosts-file',
      '/tmp/h',
      '--redirect',
      'none',
    ],
    root,
  );
  t.is(c.serviceIPPool, '127.5.0.0/24');
  t.is(c.dnsBindAddress, '127.0.0.2:5300');
  t.is(c.healthzBindAddress, '');
  t.is(c.metricsBindAddress, '127.0.0.1:1');
  t.is(c.hostsFile, '/tmp/h');
  t.is(configOf(['--kubeconfig', '/k', '--dial-via', 'direct']).dialVia, 'direct');
  t.is(configOf(['--manifests', 'm', '--dns-bind-address=']).dnsBindAddress, '', 'the DNS server can be turned off');
});

test('conflicting choices are refused, one line each, naming the flag', (t) => {
  const refused = (argv: string[], pattern: RegExp): void => {
    const err = t.throws(() => localArgv(argv, user), { instanceOf: InvalidConfigError }) as InvalidConfigError;
    t.true(
      err.problems.some((p) => pattern.test(p)),
      `${argv.join(' ')}: ${err.problems.join(' | ')}`,
    );
  };
  refused(['--manifests', 'm', '--redirect', 'iptables'], /^local: --redirect iptables cannot be combined with local/);
  refused(['--redirect=nftables'], /--redirect nftables/);
  refused(['--manifests', 'm', '--assign-service-ips'], /--assign-service-ips cannot be combined with local/);
  refused(['--manifests', 'm', '--dial-via', 'port-forward'], /--dial-via port-forward needs a cluster/);
  refused(['--manifests', 'm', '--context', 'dev'], /--manifests cannot be combined with --context/);
  refused(['--manifests', 'm', '--kubeconfig', '/k'], /--manifests cannot be combined with --kubeconfig/);
  refused(['--manifests', 'm', '--service-ip-pool='], /--service-ip-pool cannot be empty/);
});

test("the input argv is not changed and the defaults come first, so the agent names the user's flags in its errors", (t) => {
  const argv = Object.freeze(['--manifests', 'm', '--dns-ttl', 'nonsense']);
  const plan = localArgv(argv, user);
  t.deepEqual(plan.argv.slice(-argv.length), [...argv]);
  t.throws(() => parseFlags(plan.argv, { isTTY: false }), { instanceOf: InvalidConfigError, message: /--dns-ttl/ });
});
