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
  t.is(c.udpMaxSessions, 65_536);
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

test('every problem is reported at once', (t) => {
  const err = t.throws(
    () => parseFlags(['--bogus', '--bind-address', 'nope', '--udp-timeout', '30', '--udp-max-sessions', '0', '--log-level', 'loud', '--proxy-port-range', '9-3', 'stray', '--manifests']),
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
    '--udp-max-sessions: expected a positive integer, got "0"',
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
  for (const flag of ['--manifests PATH', '--bind-address IP', '--proxy-port-range', '--udp-timeout', '--udp-max-sessions', '--redirect', '--assign-service-ips[=IFACE]', '--nodeport-addresses', '--cleanup', '--log-level', '--log-format', '--help', '--version']) {
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

test('--refuse-endpoint-cidrs takes CIDRs, comma-separated and repeatable; bad ones are named', (t) => {
  t.deepEqual(run([]).refuseEndpointCidrs, []);
  t.deepEqual(run(['--refuse-endpoint-cidrs', '10.0.0.0/8,fd00:ec2::/32', '--refuse-endpoint-cidrs=192.0.2.7/32']).refuseEndpointCidrs, ['10.0.0.0/8', 'fd00:ec2::/32', '192.0.2.7/32']);
  const err = t.throws(() => parseFlags(['--refuse-endpoint-cidrs', '10.0.0.0/8,nope']), { instanceOf: InvalidConfigError })!;
  t.deepEqual(err.problems, ['--refuse-endpoint-cidrs: "nope" is not a CIDR (examples: 10.0.0.0/8, 192.168.1.5/32, fd00::/64)']);
});
