import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { DEFAULT_CONFIG } from '../../lib/config/config.js';
import { parseFlags } from '../../lib/config/flags.js';
import { InvalidConfigError } from '../../lib/errors.js';
import { ROOT } from '../helpers/process.js';
import { configFile, kubeadmWith, run } from '../helpers/config-fixture.js';

const OWN = `apiVersion: kube-userspace-proxy/v1alpha1
kind: KubeUserspaceProxyConfiguration
redirect: none
assignServiceIPs: dummy0
workers: 3
udpTimeout: 5s
udpMaxSessions: 1000
shutdownGracePeriod: 45s
serviceProxyName: mine
useEndpoints: true
logLevel: warn
`;

test("the project's own kind sets the settings v1alpha1 has no field for", async (t) => {
  const { config } = run(['--config', await configFile(t, OWN)]);
  t.deepEqual(config, {
    ...DEFAULT_CONFIG,
    assignServiceIPs: 'dummy0',
    workers: 3,
    udpTimeoutMs: 5000,
    udpMaxSessions: 1000,
    shutdownGracePeriodMs: 45_000,
    serviceProxyName: 'mine',
    useEndpoints: true,
    logLevel: 'warn',
    logFormat: 'json',
  });
});

test('the two kinds load together, in either order, and give the same configuration', async (t) => {
  const kubeadm = await kubeadmWith({ hostnameOverride: 'node-1' });
  const a = run(['--config', await configFile(t, `${kubeadm}---\n${OWN}`)]).config;
  const b = run(['--config', await configFile(t, `${OWN}---\n${kubeadm}---\n`)]).config;
  t.deepEqual(a, b);
  t.is(a.hostnameOverride, 'node-1');
  t.is(a.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
  t.is(a.workers, 3);
});

test('the own kind takes lists for repeatable flags and names a field it does not have', async (t) => {
  const ok = run([
    '--config',
    await configFile(t, 'apiVersion: kube-userspace-proxy/v1alpha1\nkind: KubeUserspaceProxyConfiguration\nmanifests: [a.yaml, b/]\nnodeportAddresses: [10.0.0.0/8, fd00::/64]\n'),
  ]);
  t.deepEqual(ok.config.manifests, ['a.yaml', 'b/']);
  t.deepEqual(ok.config.nodePortAddresses, ['10.0.0.0/8', 'fd00::/64']);
  const file = await configFile(
    t,
    'apiVersion: kube-userspace-proxy/v1alpha1\nkind: KubeUserspaceProxyConfiguration\nudpTimeOut: 5s\nworkers: [1, 2]\ncleanup: maybe\nudpMaxSessions: -1\nconfig: other.yaml\n',
  );
  const err = t.throws(() => parseFlags(['--config', file]), { instanceOf: InvalidConfigError })!;
  const at = `--config ${file}: KubeUserspaceProxyConfiguration`;
  t.deepEqual(err.problems, [
    `${at}.udpTimeOut: not a field of kube-userspace-proxy/v1alpha1 KubeUserspaceProxyConfiguration (its fields are the flags in lowerCamelCase)`,
    `${at}.workers: takes one value, not a list, got [1,2]`,
    `${at}.cleanup: must be true or false, got "maybe"`,
    `${at}.config: not a field of kube-userspace-proxy/v1alpha1 KubeUserspaceProxyConfiguration (its fields are the flags in lowerCamelCase)`,
    `${at}.udpMaxSessions: expected a number of sessions (0 = derived from the open-file limit), got "-1"`,
  ]);
});

test('unknown kinds, a kind given twice and one setting given two values are errors', async (t) => {
  const kubeadm = await kubeadmWith({ bindAddress: '127.0.0.1' });
  const file = await configFile(
    t,
    `${kubeadm}---\napiVersion: v1\nkind: ConfigMap\n---\n${OWN}---\n${OWN}---\napiVersion: kube-userspace-proxy/v1alpha1\nkind: KubeUserspaceProxyConfiguration\nbindAddress: 0.0.0.0\n`,
  );
  const err = t.throws(() => parseFlags(['--config', file]), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, [
    `--config ${file}: document 2: unknown kind "ConfigMap" of apiVersion "v1"; expected kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration or kube-userspace-proxy/v1alpha1 KubeUserspaceProxyConfiguration`,
    `--config ${file}: document 4: a second KubeUserspaceProxyConfiguration; give each kind once`,
    `--config ${file}: document 5: a second KubeUserspaceProxyConfiguration; give each kind once`,
  ]);
  const twice = await configFile(t, `${kubeadm}---\napiVersion: kube-userspace-proxy/v1alpha1\nkind: KubeUserspaceProxyConfiguration\nbindAddress: 0.0.0.0\nhostnameOverride: ""\n`);
  const err2 = t.throws(() => parseFlags(['--config', twice]), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err2.problems, [
    `--config ${twice}: bindAddress and --config ${twice}: KubeUserspaceProxyConfiguration.bindAddress differ ("127.0.0.1" and "0.0.0.0"): set it in one place`,
    `--config ${twice}: KubeUserspaceProxyConfiguration.hostnameOverride: empty name`,
  ]);
});

test('a missing file, a kubeadm InitConfiguration and malformed YAML are clear errors', async (t) => {
  const missing = t.throws(() => parseFlags(['--config', '/nonexistent/kup.yaml']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(missing.problems, ['--config /nonexistent/kup.yaml: no such file']);
  const init = await configFile(t, 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n');
  const e2 = t.throws(() => parseFlags(['--config', init]), { instanceOf: InvalidConfigError })!;
  t.deepEqual(e2.problems, [
    `--config ${init}: unknown kind "InitConfiguration" of apiVersion "kubeadm.k8s.io/v1beta4"; expected kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration or kube-userspace-proxy/v1alpha1 KubeUserspaceProxyConfiguration`,
  ]);
  const broken = await configFile(t, 'kind: [\n');
  const e3 = t.throws(() => parseFlags(['--config', broken]), { instanceOf: InvalidConfigError })!;
  t.is(e3.problems.length, 1);
  t.true(e3.problems[0]!.startsWith(`--config ${broken}: `));
  const list = await configFile(t, '- a\n');
  t.deepEqual(t.throws(() => parseFlags(['--config', list]), { instanceOf: InvalidConfigError })!.problems, [
    `--config ${list}: expected a KubeProxyConfiguration or KubeUserspaceProxyConfiguration object`,
  ]);
});

test('the two-document example of the README loads', async (t) => {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Config file'), readme.indexOf('### kube-proxy compatibility'));
  const block = /```yaml\n(apiVersion: kubeproxy[\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) return void t.fail('no example in the README');
  const { config, warnings } = run(['--config', await configFile(t, block)]);
  t.deepEqual(warnings, []);
  t.is(config.redirect, 'iptables');
  t.is(config.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
});
