import test from 'ava';
import { parseFlags } from '../../lib/config/flags.js';
import { parseServiceIPPool } from '../../lib/config/service-ip-pool-cidr.js';
import { InvalidConfigError } from '../../lib/errors.js';
import { run } from '../helpers/config-fixture.js';

test('the CIDR: IPv4 inside 127.0.0.0/8 only, with the prefix and host bits checked', (t) => {
  t.deepEqual(parseServiceIPPool('127.1.0.0/16'), { cidr: '127.1.0.0/16', first: 0x7f010000, size: 65536 });
  t.regex(parseServiceIPPool('10.0.0.0/16') as string, /not inside 127\.0\.0\.0\/8: only loopback addresses need no root/);
  t.regex(parseServiceIPPool('fd00::/64') as string, /IPv6: only IPv4 loopback ranges/);
  t.regex(parseServiceIPPool('127.1.0.1/16') as string, /host bits set: did you mean 127\.1\.0\.0\/16\?/);
  t.regex(parseServiceIPPool('127.0.0.0/7') as string, /prefix length must be 8 to 32/);
  t.regex(parseServiceIPPool('127.1.0.0') as string, /not an IPv4 CIDR/);
  t.regex(parseServiceIPPool('127.1.0.300/24') as string, /not an IPv4 CIDR/);
});

function problems(argv: string[]): readonly string[] {
  try {
    parseFlags(argv);
    return [];
  } catch (err) {
    if (err instanceof InvalidConfigError) return err.problems;
    throw err;
  }
}

test('--service-ip-pool is normalised, and refused with a redirect mode other than none or with --assign-service-ips', (t) => {
  t.is(run(['--manifests', 'x', '--service-ip-pool', ' 127.1.0.0/16']).config.serviceIPPool, '127.1.0.0/16');
  t.deepEqual(problems(['--manifests', 'x', '--service-ip-pool', '127.1.0.0/16', '--redirect', 'iptables']), [
    '--service-ip-pool: only with --redirect none (the listeners bind the pool addresses themselves; iptables mode captures ClusterIPs with rules)',
  ]);
  t.regex(problems(['--manifests', 'x', '--service-ip-pool', '127.1.0.0/16', '--redirect', 'auto'])[0]!, /only with --redirect none/);
  t.deepEqual(problems(['--manifests', 'x', '--service-ip-pool', '127.1.0.0/16', '--assign-service-ips']), [
    '--service-ip-pool cannot be combined with --assign-service-ips: loopback pool addresses need no assignment',
  ]);
  t.deepEqual(problems(['--manifests', 'x', '--service-ip-pool', '192.168.0.0/16']), [
    '--service-ip-pool: "192.168.0.0/16" is not inside 127.0.0.0/8: only loopback addresses need no root and no address assignment (use 127.1.0.0/16, say)',
  ]);
});

test('--hosts-file and --cluster-domain: defaults, a trailing dot dropped, bad values named', (t) => {
  const { config } = run(['--manifests', 'x']);
  t.is(config.hostsFile, undefined);
  t.is(config.clusterDomain, 'cluster.local');
  t.is(run(['--manifests', 'x', '--cluster-domain', 'Corp.Example.', '--hosts-file', '/etc/hosts']).config.clusterDomain, 'corp.example');
  t.deepEqual(problems(['--manifests', 'x', '--cluster-domain', 'bad_domain', '--hosts-file', ' ']), [
    '--hosts-file: empty path',
    '--cluster-domain: "bad_domain" is not a DNS domain (example: cluster.local)',
  ]);
});
