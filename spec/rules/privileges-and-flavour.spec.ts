import test from 'ava';
import { RulesError } from '../../lib/errors.js';
import { AddressAssigner } from '../../lib/rules/address-assigner.js';
import type { CommandRunner } from '../../lib/rules/command-runner.js';
import { resolveSystemBinary } from '../../lib/rules/command-runner.js';
import { detectIptablesFlavour } from '../../lib/rules/iptables-flavour.js';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import { requireNetAdmin } from '../../lib/rules/privileges.js';
import { createNetns, netnsSupport, netnsTestIf } from '../helpers/netns.js';

const netnsTest = netnsTestIf(await netnsSupport());

const nobody = { getuid: () => 1000, effectiveCapabilities: () => 0n };
const noCommands: CommandRunner = async () => ({ code: 1, stdout: '', stderr: 'must not run' });

test('without root, each mode fails at start() with one clear line, before running anything', async (t) => {
  const cases: [() => Promise<void>, string][] = [
    [() => new IptablesRules({ ...nobody, runner: noCommands, flavour: 'nft' }).start(), '--redirect iptables needs root (CAP_NET_ADMIN); run as root or use --redirect none'],
    [() => new NftablesRules({ ...nobody, runner: noCommands }).start(), '--redirect nftables needs root (CAP_NET_ADMIN); run as root or use --redirect none'],
    [() => new AddressAssigner({ ...nobody, runner: noCommands }).start(), '--assign-service-ips needs root (CAP_NET_ADMIN); run as root or leave out --assign-service-ips'],
  ];
  for (const [start, message] of cases) {
    const err = await t.throwsAsync(start(), { instanceOf: RulesError });
    t.is(err!.message, message);
    t.is(err!.code, 'KUP_ERR_RULES');
    t.false(err!.message.includes('\n'));
  }
});

test('CAP_NET_ADMIN without root is enough', (t) => {
  t.notThrows(() => requireNetAdmin('x', 'y', { getuid: () => 1000, effectiveCapabilities: () => 1n << 12n }));
  t.throws(() => requireNetAdmin('x', 'y', { getuid: () => 1000, effectiveCapabilities: () => (1n << 12n) - 1n }), { instanceOf: RulesError });
  t.throws(() => requireNetAdmin('x', 'y', { getuid: () => 1000, effectiveCapabilities: () => undefined }), { instanceOf: RulesError });
  t.notThrows(() => requireNetAdmin('x', 'y', { getuid: () => 0 }));
});

test('flavour detection prefers the flavour with KUBE- chains, then the one with more rules, else nft', async (t) => {
  const [nftSave, legacySave] = await Promise.all([resolveSystemBinary('iptables-nft-save'), resolveSystemBinary('iptables-legacy-save')]);
  // CI installs both (Debian's iptables package ships them); a machine without them fails here.
  if (!nftSave || !legacySave) throw new Error('needs both iptables-nft and iptables-legacy installed');
  const fake =
    (nft: string, legacy: string): CommandRunner =>
    async (argv) => ({ code: 0, stdout: argv[0]!.includes('-nft-') ? nft : argv[0]!.includes('-legacy-') ? legacy : '', stderr: '' });
  const withKube = '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n';
  const rules = '*filter\n-A INPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n';
  t.deepEqual(await detectIptablesFlavour(fake('', withKube)), { flavour: 'legacy', reason: 'legacy has KUBE- chains' });
  t.deepEqual(await detectIptablesFlavour(fake(withKube, rules)), { flavour: 'nft', reason: 'nft has KUBE- chains' });
  t.deepEqual(await detectIptablesFlavour(fake('', rules)), { flavour: 'legacy', reason: 'legacy has more rules' });
  t.deepEqual(await detectIptablesFlavour(fake('', '')), { flavour: 'nft', reason: 'no rules in either, default nft' });
});

netnsTest('in a fresh namespace the detected flavour is nft, and rules left in legacy make it legacy', async (t) => {
  const legacyRestore = await resolveSystemBinary('iptables-legacy-restore');
  const ns = await createNetns(t);
  t.is((await detectIptablesFlavour(ns.runner)).flavour, 'nft');
  if (!legacyRestore) return;
  const put = await ns.try(legacyRestore, ['--noflush'], '*nat\n:KUBE-PORTALS-HOST - [0:0]\nCOMMIT\n');
  if (put.code !== 0) {
    t.log(`legacy part skipped: ${put.stderr.trim()}`);
    return;
  }
  t.is((await detectIptablesFlavour(ns.runner)).flavour, 'legacy');
});
