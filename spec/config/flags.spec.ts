import test from 'ava';
import os from 'node:os';
import { InvalidConfigError } from '../../lib/errors.js';
import { parseFlags, usage } from '../../lib/config/flags.js';

function run(argv: string[]) {
  const parsed = parseFlags(argv);
  if (parsed.action !== 'run') throw new Error(`expected run, got ${parsed.action}`);
  return parsed.config;
}

test('defaults follow kube-proxy and the documented changes', (t) => {
  const c = run(['--manifests', 'a.yaml']);
  t.deepEqual(c.manifests, ['a.yaml']);
  t.is(c.bindAddress, '0.0.0.0');
  t.is(c.proxyPortRange, undefined);
  t.is(c.udpTimeoutMs, 30_000);
  t.is(c.udpMaxSessions, 0);
  t.is(c.redirect, 'none');
  t.is(c.logLevel, 'info');
  t.is(c.logFormat, 'json');
  t.true(Object.isFrozen(c));
});

test('log format defaults to text on a terminal', (t) => {
  const parsed = parseFlags([], { isTTY: true });
  t.is(parsed.action === 'run' && parsed.config.logFormat, 'text');
});

test('--manifests is repeatable and both value forms are accepted', (t) => {
  const c = run(['--manifests=a', '--manifests', 'b', '--udp-timeout=250ms', '--proxy-port-range', '30000+99', '--bind-address=::']);
  t.deepEqual(c.manifests, ['a', 'b']);
  t.is(c.udpTimeoutMs, 250);
  t.deepEqual(c.proxyPortRange, { base: 30000, size: 100 });
  t.is(c.bindAddress, '::');
});

test('help and version win over everything else', (t) => {
  t.is(parseFlags(['--help']).action, 'help');
  t.is(parseFlags(['--version']).action, 'version');
});

test('-h is --help', (t) => {
  t.is(parseFlags(['-h']).action, 'help');
  t.is(parseFlags(['--manifests', 'x', '-h']).action, 'help');
  t.regex(usage('kube-userspace-proxy'), /^ {2}-h, --help +print this help and exit$/m);
});

test('an unknown flag names the nearest known one, and its value is not reported as a stray argument', (t) => {
  const err = t.throws(() => parseFlags(['--manifest', 'x', '--metrics-bind-adress=127.0.0.1:1', '--dryrun', '--bogus', '-manifests', 'y']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, [
    'unknown flag --manifest; did you mean --manifests?',
    'unknown flag --metrics-bind-adress; did you mean --metrics-bind-address?',
    'unknown flag --dryrun; did you mean --dry-run?',
    'unknown flag --bogus',
    'unexpected argument "-manifests"; did you mean --manifests?',
    'unexpected argument "y"',
  ]);
});

test('every problem is reported at once', (t) => {
  const err = t.throws(
    () => parseFlags(['--bogus', '--bind-address', 'nope', '--udp-timeout', '30', '--udp-max-sessions', '-5', '--log-level', 'loud', '--proxy-port-range', '9-3', 'stray', '--manifests']),
    { instanceOf: InvalidConfigError },
  )!;
  t.is(err.code, 'KUP_ERR_INVALID_CONFIG');
  t.deepEqual(err.problems, [
    'unknown flag --bogus',
    'unexpected argument "stray"',
    '--manifests needs a value (PATH)',
    '--bind-address: "nope" is not an IP address',
    '--proxy-port-range: end port 3 is below begin port 9',
    '--udp-timeout: "30" is not a duration (examples: 250ms, 30s, 1m)',
    '--udp-max-sessions: expected a number of sessions (0 = derived from the open-file limit), got "-5"',
    '--log-level: expected one of error, warn, info, debug, got "loud"',
  ]);
});

test('a flag given twice is an error unless repeatable', (t) => {
  const err = t.throws(() => parseFlags(['--udp-timeout=1s', '--udp-timeout=2s']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['--udp-timeout given more than once']);
});

test('redirect modes, --assign-service-ips with an optional interface, --nodeport-addresses CIDRs', (t) => {
  t.is(run(['--redirect', 'iptables']).redirect, 'iptables');
  const c = run(['--redirect=none', '--assign-service-ips', '--nodeport-addresses', '10.0.0.0/8,fd00::/64', '--nodeport-addresses=192.168.1.5/32']);
  t.is(c.assignServiceIPs, 'lo');
  t.deepEqual(c.nodePortAddresses, ['10.0.0.0/8', 'fd00::/64', '192.168.1.5/32']);
  t.is(run(['--assign-service-ips=dummy0']).assignServiceIPs, 'dummy0');
  t.is(run([]).assignServiceIPs, undefined);
  t.true(run(['--cleanup']).cleanup);
});

test('redirect problems are named', (t) => {
  const err = t.throws(() => parseFlags(['--redirect', 'ipvs', '--nodeport-addresses', '10.0.0.1,300.1.1.1/8']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, [
    '--redirect: expected none, iptables, nftables or auto, got "ipvs"',
    '--nodeport-addresses: "10.0.0.1" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)',
    '--nodeport-addresses: "300.1.1.1/8" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)',
  ]);
  const err2 = t.throws(() => parseFlags(['--redirect', 'iptables', '--assign-service-ips']), { instanceOf: InvalidConfigError })!;
  t.regex(err2.problems[0]!, /--assign-service-ips: only with --redirect none or auto/);
});

test('usage lists every flag with its default', (t) => {
  const text = usage('kube-userspace-proxy');
  for (const flag of [
    '--manifests PATH',
    '--bind-address IP',
    '--proxy-port-range',
    '--udp-timeout',
    '--udp-max-sessions',
    '--redirect',
    '--assign-service-ips[=IFACE]',
    '--nodeport-addresses',
    '--cleanup',
    '--log-level',
    '--log-format',
    '--help',
    '--version',
  ]) {
    t.true(text.includes(flag), flag);
  }
  t.regex(text, /default 30s/);
});

test('--workers takes a count or auto (one per CPU); default one process', (t) => {
  t.is(run(['--manifests', 'x']).workers, 1);
  t.is(run(['--manifests', 'x', '--workers', '3']).workers, 3);
  t.is(run(['--manifests', 'x', '--workers=auto']).workers, os.availableParallelism());
  for (const bad of ['0', '-1', 'two', '65']) {
    const err = t.throws(() => parseFlags(['--manifests', 'x', '--workers', bad]), { instanceOf: InvalidConfigError });
    t.deepEqual(err.problems, [`--workers: expected auto or a number from 1 to 64, got "${bad}"`]);
  }
});

test('-v N maps klog verbosity onto log levels', (t) => {
  const level = (argv: string[]) => run(argv).logLevel;
  t.is(level(['-v', '0']), 'info');
  t.is(level(['-v', '2']), 'info');
  t.is(level(['-v=4']), 'debug');
  t.is(level(['--v=5']), 'debug');
  t.throws(() => parseFlags(['-v', '4', '--log-level', 'warn']), { instanceOf: InvalidConfigError, message: /-v and --log-level both given: choose one/ });
});

test("kube-proxy's flag names: --iptables-sync-period, --iptables-min-sync-period and --logging-format are --sync-period, --min-sync-period and --log-format", (t) => {
  const c = run(['--iptables-sync-period', '10s', '--iptables-min-sync-period=500ms', '--logging-format', 'text']);
  t.is(c.logFormat, 'text');
  t.is(c.syncPeriodMs, 10_000);
  t.is(c.minSyncPeriodMs, 500);
  const err = t.throws(() => parseFlags(['--sync-period', '10s', '--iptables-sync-period', '20s', '--iptables-min-sync-period', 'x']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['--iptables-sync-period and --sync-period are the same setting: give one', '--iptables-min-sync-period: "x" is not a duration (examples: 250ms, 30s, 1m)']);
});

test('--proxy-mode takes userspace (or ""); any other mode is a clear error naming it', (t) => {
  t.notThrows(() => run(['--proxy-mode', 'userspace']));
  t.notThrows(() => run(['--proxy-mode=']));
  for (const mode of ['iptables', 'ipvs', 'nftables', 'kernelspace']) {
    const err = t.throws(() => parseFlags(['--proxy-mode', mode]), { instanceOf: InvalidConfigError })!;
    t.deepEqual(err.problems, [`--proxy-mode: "${mode}" is not supported: this proxy is kube-proxy's userspace mode (choose how traffic reaches it with --redirect)`]);
  }
});

test("--oom-score-adj: kube-proxy's -999 by default, -1000 to 1000", (t) => {
  t.is(run([]).oomScoreAdj, -999);
  t.is(run(['--oom-score-adj', '0']).oomScoreAdj, 0);
  t.is(run(['--oom-score-adj=-1000']).oomScoreAdj, -1000);
  for (const bad of ['1001', '-1001', 'low', '1.5']) {
    t.deepEqual(t.throws(() => parseFlags(['--oom-score-adj', bad]), { instanceOf: InvalidConfigError })!.problems, [`--oom-score-adj: expected a number from -1000 to 1000, got "${bad}"`]);
  }
});

test('--kube-api-qps, --kube-api-burst, --kube-api-content-type: 0 or "" is the default, as client-go', (t) => {
  const d = run([]);
  t.deepEqual([d.kubeApiQps, d.kubeApiBurst, d.kubeApiContentType], [5, 10, 'application/json']);
  const c = run(['--kube-api-qps', '0.5', '--kube-api-burst', '3', '--kube-api-content-type', 'application/vnd.kubernetes.protobuf']);
  t.deepEqual([c.kubeApiQps, c.kubeApiBurst, c.kubeApiContentType], [0.5, 3, 'application/vnd.kubernetes.protobuf']);
  const z = run(['--kube-api-qps', '0', '--kube-api-burst', '0', '--kube-api-content-type=']);
  t.deepEqual([z.kubeApiQps, z.kubeApiBurst, z.kubeApiContentType], [5, 10, 'application/json']);
  const err = t.throws(() => parseFlags(['--kube-api-qps', '-1', '--kube-api-burst', 'many']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['--kube-api-qps: expected a number of requests per second (0 = default 5), got "-1"', '--kube-api-burst: expected a number of requests (0 = default 10), got "many"']);
});

test("--nodeport-addresses takes kube-proxy's keywords all and localhost; primary is refused by name", (t) => {
  t.deepEqual(run(['--nodeport-addresses', 'localhost,10.0.0.0/8']).nodePortAddresses, ['127.0.0.0/8', '::1/128', '10.0.0.0/8']);
  t.deepEqual(run(['--nodeport-addresses', 'all']).nodePortAddresses, ['0.0.0.0/0', '::/0']);
  const err = t.throws(() => parseFlags(['--nodeport-addresses', 'primary']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['--nodeport-addresses: "primary" (the Node object\'s addresses) is not supported: list the CIDRs']);
});

test('--refuse-endpoint-cidrs takes CIDRs, comma-separated and repeatable; bad ones are named', (t) => {
  t.deepEqual(run([]).refuseEndpointCidrs, []);
  t.deepEqual(run(['--refuse-endpoint-cidrs', '10.0.0.0/8,fd00:ec2::/32', '--refuse-endpoint-cidrs=192.0.2.7/32']).refuseEndpointCidrs, ['10.0.0.0/8', 'fd00:ec2::/32', '192.0.2.7/32']);
  const err = t.throws(() => parseFlags(['--refuse-endpoint-cidrs', '10.0.0.0/8,nope']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['--refuse-endpoint-cidrs: "nope" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)']);
});
