import test from 'ava';
import { DEFAULT_CONFIG } from '../../lib/config/config.js';
import { parseFlags } from '../../lib/config/flags.js';
import { InvalidConfigError } from '../../lib/errors.js';
import { configFile, KUBEADM_EXAMPLE, kubeadmWith, run } from '../helpers/config-fixture.js';

test('the KubeProxyConfiguration kubeadm writes loads: every zero is the default, no warning', (t) => {
  const { config, warnings } = run(['--config', KUBEADM_EXAMPLE]);
  t.deepEqual(warnings, []);
  // Only the kubeconfig is set by kubeadm; every other field is zero, so the default.
  t.deepEqual(config, { ...DEFAULT_CONFIG, kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf', logFormat: 'json' });
});

test('featureGates: {} and the other zero spellings mean the default', async (t) => {
  const file = await configFile(
    t,
    await kubeadmWith({ featureGates: {}, 'logging.flushFrequency': '0s', 'logging.vmodule': [], 'ipvs.excludeCIDRs': [], nodePortAddresses: [], 'conntrack.udpTimeout': '0' }),
  );
  const { config, warnings } = run(['--config', file]);
  t.deepEqual(warnings, []);
  t.deepEqual(config.nodePortAddresses, []);
});

test('fields that do not act here: one warning each, naming the field, when set to a non-default value', async (t) => {
  const changed = {
    featureGates: { SomeGate: true },
    clusterCIDR: '10.244.0.0/16',
    'conntrack.maxPerCore': 0,
    'conntrack.tcpBeLiberal': true,
    'iptables.masqueradeAll': true,
    'ipvs.scheduler': 'rr',
    'nftables.syncPeriod': '10s',
    'winkernel.enableDSR': true,
    'logging.flushFrequency': '10s',
    'clientConnection.acceptContentTypes': 'application/json',
    detectLocalMode: 'BridgeInterface',
    enableProfiling: true,
  };
  const file = await configFile(t, await kubeadmWith(changed));
  const { warnings } = run(['--config', file]);
  t.deepEqual(
    warnings.map((w) => w.setting).sort(),
    Object.keys(changed)
      .map((k) => `--config ${file}: ${k}`)
      .sort(),
  );
  const conntrack = warnings.find((w) => w.setting.endsWith('conntrack.maxPerCore'))!;
  t.is(conntrack.reason, 'set to 0, not applied: this proxy does not tune conntrack');
  for (const w of warnings) t.false(w.reason.includes('\n'), 'one line each');
});

test("an ignored field set to kube-proxy's own default is no warning", async (t) => {
  const file = await configFile(
    t,
    await kubeadmWith({
      'conntrack.maxPerCore': 32768,
      'conntrack.min': 131072,
      'conntrack.tcpEstablishedTimeout': '24h0m0s',
      'conntrack.tcpCloseWaitTimeout': '1h0m0s',
      'iptables.masqueradeBit': 14,
      'iptables.localhostNodePorts': true,
      'ipvs.syncPeriod': '30s',
      'nftables.minSyncPeriod': '1s',
      detectLocalMode: 'ClusterCIDR',
      'logging.flushFrequency': '5s',
    }),
  );
  t.deepEqual(run(['--config', file]).warnings, []);
});

test('the fields this proxy has set its settings', async (t) => {
  const file = await configFile(
    t,
    await kubeadmWith({
      mode: 'userspace',
      bindAddress: '127.0.0.1',
      healthzBindAddress: '127.0.0.1:20256',
      metricsBindAddress: '127.0.0.1',
      'clientConnection.kubeconfig': '/etc/kube/config',
      'clientConnection.qps': 2.5,
      'clientConnection.burst': 4,
      'clientConnection.contentType': 'application/json',
      hostnameOverride: 'Node-7',
      portRange: '30000-30099',
      configSyncPeriod: '10m0s',
      nodePortAddresses: ['10.0.0.0/8'],
      'iptables.syncPeriod': '20s',
      'iptables.minSyncPeriod': '2s',
      oomScoreAdj: 0,
      'logging.format': 'text',
      'logging.verbosity': 4,
    }),
  );
  const { config, warnings } = run(['--config', file]);
  t.deepEqual(warnings, []);
  t.deepEqual(config, {
    ...DEFAULT_CONFIG,
    bindAddress: '127.0.0.1',
    healthzBindAddress: '127.0.0.1:20256',
    metricsBindAddress: '127.0.0.1:10249', // a bare IP gets the default port, as kube-proxy's defaulting
    kubeconfig: '/etc/kube/config',
    kubeApiQps: 2.5,
    kubeApiBurst: 4,
    kubeApiContentType: 'application/json',
    hostnameOverride: 'node-7',
    proxyPortRange: { base: 30000, size: 100 },
    configSyncPeriodMs: 600_000,
    nodePortAddresses: ['10.0.0.0/8'],
    syncPeriodMs: 20_000,
    minSyncPeriodMs: 2000,
    oomScoreAdj: 0, // a pointer field: 0 is a value, only null is the default
    logFormat: 'text',
    logLevel: 'debug',
  });
});

test('an IPv6 bindAddress moves the default health and metrics addresses to IPv6, as kube-proxy', async (t) => {
  const { config } = run(['--config', await configFile(t, await kubeadmWith({ bindAddress: '::' }))]);
  t.is(config.healthzBindAddress, '[::]:10256');
  t.is(config.metricsBindAddress, '[::1]:10249');
});

test("udpIdleTimeout, the userspace mode's field of v1alpha1 until 1.25, sets --udp-timeout", async (t) => {
  const { config } = run(['--config', await configFile(t, await kubeadmWith({ udpIdleTimeout: '250ms' }))]);
  t.is(config.udpTimeoutMs, 250);
});

test('fields v1alpha1 does not have, wrong types and other modes are errors naming the field, all at once', async (t) => {
  const file = await configFile(
    t,
    await kubeadmWith({
      syncPeriod: '30s',
      'conntrack.max': 0,
      'ipvs.bogus': 'x',
      'iptables.syncPeriod': 30,
      oomScoreAdj: 'low',
      featureGates: ['A'],
      conntrack: 5,
      mode: 'ipvs',
      'logging.format': 'xml',
    }),
  );
  const err = t.throws(() => parseFlags(['--config', file, '--bogus']), { instanceOf: InvalidConfigError })!;
  const at = `--config ${file}`;
  t.deepEqual(err.problems, [
    'unknown flag --bogus',
    `${at}: conntrack: must be an object, got 5`,
    `${at}: iptables.syncPeriod: must be a duration such as 30s or 1m, got 30`,
    `${at}: ipvs.bogus: not a field of kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration`,
    `${at}: oomScoreAdj: must be an integer, got "low"`,
    `${at}: syncPeriod: not a field of kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration (it is iptables.syncPeriod there)`,
    `${at}: featureGates: must be a map of names to true or false, got ["A"]`,
    `${at}: mode: "ipvs" is not supported: this proxy is kube-proxy's userspace mode (choose how traffic reaches it with --redirect)`,
    `${at}: logging.format: expected text or json, got "xml"`,
  ]);
});

test('a value of the right type but out of range names the file field, not a flag', async (t) => {
  const file = await configFile(t, await kubeadmWith({ oomScoreAdj: 2000, 'clientConnection.kubeconfig': '', portRange: '9-3' }));
  const err = t.throws(() => parseFlags(['--config', file]), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, [`--config ${file}: portRange: end port 3 is below begin port 9`, `--config ${file}: oomScoreAdj: expected a number from -1000 to 1000, got "2000"`]);
});

test("flags override the file; --manifests replaces the file's kubeconfig", async (t) => {
  const file = await configFile(t, await kubeadmWith({ bindAddress: '127.0.0.1', 'iptables.syncPeriod': '20s', 'logging.verbosity': 4 }));
  const { config } = run(['--config', file, '--bind-address', '0.0.0.0', '--iptables-sync-period=5s', '--manifests', 'x.yaml', '--log-level', 'warn']);
  t.is(config.bindAddress, '0.0.0.0');
  t.is(config.syncPeriodMs, 5000);
  t.deepEqual(config.manifests, ['x.yaml']);
  t.is(config.kubeconfig, undefined);
  t.is(config.logLevel, 'warn');
});

test("--master on the command line keeps the file's kubeconfig, as kube-proxy", async (t) => {
  const { config } = run(['--config', KUBEADM_EXAMPLE, '--master', 'https://10.0.0.1:6443']);
  t.is(config.kubeconfig, '/var/lib/kube-proxy/kubeconfig.conf');
  t.is(config.master, 'https://10.0.0.1:6443');
});

test('a KubeProxyConfiguration as kube-proxy writes it, every field at its defaulted value, loads with no warning', async (t) => {
  const file = await configFile(
    t,
    await kubeadmWith({
      'clientConnection.burst': 10,
      'clientConnection.contentType': 'application/vnd.kubernetes.protobuf',
      'clientConnection.kubeconfig': '',
      'clientConnection.qps': 5,
      configSyncPeriod: '15m0s',
      conntrack: { maxPerCore: 32768, min: 131072, tcpBeLiberal: false, tcpCloseWaitTimeout: '1h0m0s', tcpEstablishedTimeout: '24h0m0s', udpStreamTimeout: '0s', udpTimeout: '0s' },
      healthzBindAddress: '0.0.0.0:10256',
      iptables: { localhostNodePorts: true, masqueradeAll: false, masqueradeBit: 14, minSyncPeriod: '1s', syncPeriod: '30s' },
      'ipvs.syncPeriod': '30s',
      logging: { flushFrequency: '5s', format: 'text', options: { json: { infoBufferSize: '0' }, text: { infoBufferSize: '0' } }, verbosity: 0 },
      metricsBindAddress: '127.0.0.1:10249',
      nftables: { masqueradeAll: false, masqueradeBit: 14, minSyncPeriod: '1s', syncPeriod: '30s' },
      oomScoreAdj: -999,
    }),
  );
  const { config, warnings } = run(['--config', file]);
  t.deepEqual(warnings, []);
  t.deepEqual(config, { ...DEFAULT_CONFIG, kubeApiContentType: 'application/vnd.kubernetes.protobuf', logFormat: 'text' });
});
