import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseFlags } from '../../lib/config/flags.js';
import { renderConfigFile } from '../../lib/config/config-file.js';
import { InvalidConfigError } from '../../lib/errors.js';

async function configFile(t: { teardown(fn: () => Promise<void>): void }, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, text);
  return file;
}

const GOOD = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: userspace
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:20256
metricsBindAddress: 127.0.0.1:20249
clientConnection:
  kubeconfig: /etc/kube/config
hostnameOverride: node-7
portRange: 30000-30099
udpIdleTimeout: 5s
configSyncPeriod: 10m
nodePortAddresses: [10.0.0.0/8]
iptables:
  syncPeriod: 20s
  minSyncPeriod: 2s
`;

test('a KubeProxyConfiguration sets the fields this proxy has', async (t) => {
  const file = await configFile(t, GOOD);
  const parsed = parseFlags(['--config', file]);
  if (parsed.action !== 'run') return t.fail();
  const c = parsed.config;
  t.is(c.bindAddress, '127.0.0.1');
  t.is(c.healthzBindAddress, '127.0.0.1:20256');
  t.is(c.metricsBindAddress, '127.0.0.1:20249');
  t.is(c.kubeconfig, '/etc/kube/config');
  t.is(c.hostnameOverride, 'node-7');
  t.deepEqual(c.proxyPortRange, { base: 30000, size: 100 });
  t.is(c.udpTimeoutMs, 5000);
  t.is(c.configSyncPeriodMs, 600_000);
  t.deepEqual(c.nodePortAddresses, ['10.0.0.0/8']);
  t.is(c.syncPeriodMs, 20_000);
  t.is(c.minSyncPeriodMs, 2000);
});

test('flags override the file', async (t) => {
  const file = await configFile(t, GOOD);
  const parsed = parseFlags(['--config', file, '--bind-address', '0.0.0.0', '--udp-timeout=1s']);
  if (parsed.action !== 'run') return t.fail();
  t.is(parsed.config.bindAddress, '0.0.0.0');
  t.is(parsed.config.udpTimeoutMs, 1000);
  t.is(parsed.config.hostnameOverride, 'node-7');
});

test('every problem of the file and the flags is reported at once, fields that do not apply by name', async (t) => {
  const file = await configFile(
    t,
    `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
ipvs:
  scheduler: rr
conntrack:
  maxPerCore: 32768
clientConnection:
  kubeconfig: /k
  qps: 5
udpIdleTimeout: 30
portRange: [1]
`,
  );
  const err = t.throws(() => parseFlags(['--config', file, '--bogus']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, [
    'unknown flag --bogus',
    `--config ${file}: mode: this proxy is the userspace mode; "ipvs" is not supported (choose rules with --redirect)`,
    `--config ${file}: ipvs: does not apply to kube-userspace-proxy`,
    `--config ${file}: conntrack: does not apply to kube-userspace-proxy`,
    `--config ${file}: clientConnection.qps: does not apply to kube-userspace-proxy`,
    `--config ${file}: udpIdleTimeout: must be a string, got 30`,
    `--config ${file}: portRange: must be a string, got [1]`,
  ]);
});

test('a missing file, a wrong kind and malformed YAML are clear errors', async (t) => {
  const missing = t.throws(() => parseFlags(['--config', '/nonexistent/kup.yaml']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(missing.problems, ['--config /nonexistent/kup.yaml: no such file']);
  const wrongKind = await configFile(t, 'apiVersion: v1\nkind: ConfigMap\n');
  const e2 = t.throws(() => parseFlags(['--config', wrongKind]), { instanceOf: InvalidConfigError })!;
  t.is(e2.problems.length, 2);
  t.regex(e2.problems[0]!, /apiVersion: must be kubeproxy\.config\.k8s\.io\/v1alpha1/);
  const broken = await configFile(t, 'kind: [\n');
  const e3 = t.throws(() => parseFlags(['--config', broken]), { instanceOf: InvalidConfigError })!;
  t.regex(e3.problems[0]!, /--config .*config\.yaml: /);
});

test('--write-config-to writes the effective configuration, which reads back to the same config', async (t) => {
  const file = await configFile(t, GOOD);
  const parsed = parseFlags(['--config', file, '--udp-timeout', '7s', '--write-config-to', `${file}.out`]);
  if (parsed.action !== 'write-config') return t.fail();
  t.is(parsed.file, `${file}.out`);
  await writeFile(parsed.file, renderConfigFile(parsed.config));
  const text = await readFile(parsed.file, 'utf8');
  t.regex(text, /kind: KubeProxyConfiguration/);
  t.regex(text, /udpIdleTimeout: 7s/);
  const again = parseFlags(['--config', parsed.file]);
  if (again.action !== 'run') return t.fail();
  const { manifests: _m, ...rest } = again.config;
  const { manifests: _n, ...want } = parsed.config;
  t.deepEqual(rest, want);
});

test('-v N maps klog verbosity onto log levels', (t) => {
  const level = (argv: string[]) => {
    const p = parseFlags(argv);
    return p.action === 'run' ? p.config.logLevel : undefined;
  };
  t.is(level(['-v', '0']), 'info');
  t.is(level(['-v', '2']), 'info');
  t.is(level(['-v=4']), 'debug');
  t.is(level(['--v=5']), 'debug');
  t.throws(() => parseFlags(['-v', '4', '--log-level', 'warn']), { instanceOf: InvalidConfigError, message: /choose one/ });
});
