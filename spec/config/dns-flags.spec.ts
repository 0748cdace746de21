import test from 'ava';
import { InvalidConfigError } from '../../lib/errors.js';
import { parseFlags } from '../../lib/config/flags.js';

function run(argv: string[]) {
  const parsed = parseFlags(argv);
  if (parsed.action !== 'run') throw new Error(`expected run, got ${parsed.action}`);
  return parsed.config;
}

/** The problems parseFlags reports, all at once. */
function problems(argv: string[]): readonly string[] {
  try {
    parseFlags(argv);
  } catch (err) {
    if (err instanceof InvalidConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('the DNS server is off by default; cluster.local, 5 s TTL, forwarding to /etc/resolv.conf', (t) => {
  const c = run([]);
  t.is(c.dnsBindAddress, '');
  t.is(c.clusterDomain, 'cluster.local');
  t.is(c.dnsTtlMs, 5000);
  t.is(c.dnsUpstream, 'forward');
  t.is(c.resolvConf, '/etc/resolv.conf');
});

test('DNS flags are read; the cluster domain is lowercased and loses a trailing dot', (t) => {
  const c = run(['--dns-bind-address', '[::1]:5353', '--cluster-domain', 'Corp.Example.', '--dns-ttl', '0s', '--dns-upstream', 'refuse', '--resolv-conf', '/tmp/r.conf']);
  t.is(c.dnsBindAddress, '[::1]:5353');
  t.is(c.clusterDomain, 'corp.example');
  t.is(c.dnsTtlMs, 0);
  t.is(c.dnsUpstream, 'refuse');
  t.is(c.resolvConf, '/tmp/r.conf');
});

test('bad DNS flags are each named, all at once', (t) => {
  t.deepEqual(problems(['--dns-bind-address', '127.0.0.1', '--cluster-domain', 'a..b', '--dns-ttl', '1500ms', '--dns-upstream', 'drop', '--resolv-conf', '']), [
    '--dns-bind-address: missing ":PORT", got "127.0.0.1"; expected HOST:PORT, e.g. 127.0.0.1:10249 or [::1]:10249',
    '--cluster-domain: "a..b" is not a DNS domain (example: cluster.local)',
    '--dns-ttl: expected whole seconds from 0s to 1h (DNS counts TTLs in seconds), got "1500ms"',
    '--dns-upstream: expected forward or refuse, got "drop"',
    '--resolv-conf: empty path',
  ]);
  t.deepEqual(problems(['--dns-ttl', '2h']), ['--dns-ttl: expected whole seconds from 0s to 1h (DNS counts TTLs in seconds), got "2h"']);
});
