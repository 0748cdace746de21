import { writeFile } from 'node:fs/promises';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import YAML from 'yaml';
import { FLAGS, fileValue } from '../../lib/config/flag-table.js';
import { parseFlags } from '../../lib/config/flags.js';
import { readKubeProxyConfiguration } from '../../lib/config/kube-proxy-configuration.js';
import { renderConfigFile } from '../../lib/config/render-config-file.js';
import { configFile, run } from '../helpers/config-fixture.js';

/**
 * A value other than the default for every flag a file can hold. A flag added later fails the
 * first test below until it has a value here, so the round trip covers it too.
 */
const NON_DEFAULT: Record<string, string[]> = {
  manifests: ['--manifests', 'a.yaml', '--manifests', 'dir/'],
  kubeconfig: ['--kubeconfig', '/etc/kube/proxy.conf'],
  master: ['--master', 'https://10.0.0.1:6443'],
  context: ['--context', 'prod'],
  'use-endpoints': ['--use-endpoints'],
  'service-proxy-name': ['--service-proxy-name', 'mine'],
  'config-sync-period': ['--config-sync-period', '10m'],
  'kube-api-qps': ['--kube-api-qps', '20.5'],
  'kube-api-burst': ['--kube-api-burst', '40'],
  'kube-api-content-type': ['--kube-api-content-type', 'application/vnd.kubernetes.protobuf'],
  'hostname-override': ['--hostname-override', 'node-9'],
  'node-labels': ['--node-labels', 'topology.kubernetes.io/zone=z1,rack=r7'],
  'dial-via': ['--dial-via', 'port-forward'],
  namespace: ['--namespace', 'shop,tools', '--namespace', 'web'],
  selector: ['--selector', 'app in (orders,carts),tier!=db,!legacy'],
  'bind-address': ['--bind-address', '10.1.2.3'],
  'proxy-port-range': ['--proxy-port-range', '40000-40999'],
  'udp-timeout': ['--udp-timeout', '1m30s'],
  'udp-max-sessions': ['--udp-max-sessions', '777'],
  'tcp-idle-timeout': ['--tcp-idle-timeout', '90s'],
  workers: ['--workers', '3'],
  redirect: ['--redirect', 'auto'],
  'assign-service-ips': ['--assign-service-ips=dummy7'],
  'nodeport-addresses': ['--nodeport-addresses', '10.0.0.0/8,fd00::/64'],
  'refuse-endpoint-cidrs': ['--refuse-endpoint-cidrs', '100.64.0.0/10,fd00:1::/64'],
  'service-ip-pool': ['--service-ip-pool', '127.9.0.0/24'],
  'hosts-file': ['--hosts-file', '/tmp/kup-hosts'],
  cleanup: ['--cleanup'],
  'sync-period': ['--sync-period', '45s'],
  'min-sync-period': ['--min-sync-period', '250ms'],
  'shutdown-grace-period': ['--shutdown-grace-period', '2m'],
  'oom-score-adj': ['--oom-score-adj', '-500'],
  'healthz-bind-address': ['--healthz-bind-address', '127.0.0.1:20256'],
  'metrics-bind-address': ['--metrics-bind-address', ''],
  'dns-bind-address': ['--dns-bind-address', '127.0.0.1:5353'],
  'cluster-domain': ['--cluster-domain', 'corp.example'],
  'dns-ttl': ['--dns-ttl', '30s'],
  'dns-upstream': ['--dns-upstream', 'refuse'],
  'resolv-conf': ['--resolv-conf', '/run/systemd/resolve/resolv.conf'],
  'dry-run': ['--dry-run'],
  'log-level': ['--log-level', 'error'],
  'log-format': ['--log-format', 'text'],
};
const SOURCE_FLAGS = ['manifests', 'kubeconfig', 'master', 'context'];
/** Flags the others' values rule out (--service-ip-pool wants --redirect none): round-tripped on their own. */
const ALONE = ['service-ip-pool'];

test('every flag a file can hold has a non-default value in this test', (t) => {
  const settable = FLAGS.filter((f) => f.inFile !== false).map((f) => f.name);
  t.deepEqual(Object.keys(NON_DEFAULT).sort(), settable.sort());
});

async function roundTrip(t: ExecutionContext, argv: string[]): Promise<void> {
  const file = await configFile(t, '');
  const parsed = parseFlags([...argv, '--write-config-to', file]);
  if (parsed.action !== 'write-config') return void t.fail();
  await writeFile(file, renderConfigFile(parsed.config));
  const again = run(['--config', file]);
  t.deepEqual(again.config, parsed.config);
  t.deepEqual(again.warnings, []);
  // Nothing falls back to a default: each setting differs from what no flags give.
  const defaults = run(SOURCE_FLAGS.every((f) => !argv.includes(`--${f}`)) ? [] : ['--manifests', 'x']).config;
  for (const spec of FLAGS.filter((f) => f.inFile !== false && argv.includes(NON_DEFAULT[f.name]![0]!))) {
    t.notDeepEqual(fileValue(spec, again.config), fileValue(spec, defaults), spec.name);
  }
}

test('round trip: --write-config-to, then --config, gives the same Config for every flag (manifests)', async (t) => {
  // --dial-via port-forward needs the API as the source.
  const argv = Object.entries(NON_DEFAULT)
    .filter(([name]) => name !== 'kubeconfig' && name !== 'master' && name !== 'context' && name !== 'dial-via' && !ALONE.includes(name))
    .flatMap(([, a]) => a);
  await roundTrip(t, argv);
});

test('round trip: the same with an API server as the source', async (t) => {
  const argv = Object.entries(NON_DEFAULT)
    .filter(([name]) => name !== 'manifests' && !ALONE.includes(name))
    .flatMap(([, a]) => a);
  await roundTrip(t, argv);
});

test('round trip: --service-ip-pool, which only --redirect none takes', async (t) => {
  await roundTrip(t, NON_DEFAULT['service-ip-pool']!);
});

test('round trip of the defaults', async (t) => {
  await roundTrip(t, []);
});

test('round trip of an IPv6 bindAddress with the health and metrics servers off', async (t) => {
  await roundTrip(t, ['--bind-address', '::', '--healthz-bind-address=', '--metrics-bind-address=']);
});

test('the first document is valid v1alpha1: sync periods under iptables, only v1alpha1 fields, no warnings', (t) => {
  const { config } = run(['--sync-period', '45s', '--min-sync-period', '2s', '--udp-timeout', '5s', '--workers', '2']);
  const [kubeProxy, own] = YAML.parseAllDocuments(renderConfigFile(config)).map((d) => d.toJS() as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
  t.is(kubeProxy!['apiVersion'], 'kubeproxy.config.k8s.io/v1alpha1');
  t.is(kubeProxy!['kind'], 'KubeProxyConfiguration');
  t.deepEqual(kubeProxy!['iptables'], { syncPeriod: '45s', minSyncPeriod: '2s' });
  t.false('syncPeriod' in kubeProxy!);
  t.false('udpIdleTimeout' in kubeProxy!, 'removed from v1alpha1 in 1.26: written in the own kind');
  t.is(kubeProxy!['mode'], '');
  const read = readKubeProxyConfiguration(kubeProxy!, 'x');
  t.deepEqual(read.problems, []);
  t.deepEqual(read.warnings, []);
  t.is(own!['kind'], 'KubeUserspaceProxyConfiguration');
  t.is(own!['udpTimeout'], '5s');
  t.is(own!['workers'], 2);
  t.false('bindAddress' in own!, 'a setting with a v1alpha1 field is written there only');
});
