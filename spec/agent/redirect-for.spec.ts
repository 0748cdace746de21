import test from 'ava';
import { redirectFor } from '../../lib/agent/redirect-for.js';
import { DEFAULT_CONFIG } from '../../lib/config/config.js';
import type { Config } from '../../lib/config/config.js';
import type { CommandRunner } from '../../lib/rules/command-runner.js';
import { createNetns, netnsSupport, netnsTestIf } from '../helpers/netns.js';

const netnsTest = netnsTestIf(await netnsSupport());

const auto: Config = { ...DEFAULT_CONFIG, redirect: 'auto' };

/** The namespace's real tools, except those named, which fail as on a kernel without them. */
function without(runner: CommandRunner, ...names: string[]): CommandRunner {
  return async (argv, stdin) => (names.some((n) => argv[0]!.endsWith(`/${n}`)) ? { code: 1, stdout: '', stderr: `${argv[0]}: not supported by this kernel` } : runner(argv, stdin));
}

netnsTest('--redirect auto picks iptables where it works, else nftables, else none --assign-service-ips', async (t) => {
  const ns = await createNetns(t);
  t.is((await redirectFor(auto, ns.runner)).mode, 'iptables');
  t.is((await redirectFor(auto, without(ns.runner, 'iptables'))).mode, 'nftables');
  const none = await redirectFor(auto, without(ns.runner, 'iptables', 'nft'));
  t.is(none.mode, 'none --assign-service-ips=lo');
  t.truthy(none.assigner);
  t.is(none.rules, undefined);
});

test('explicit modes build their backend; none builds nothing', async (t) => {
  const runner: CommandRunner = async () => ({ code: 1, stdout: '', stderr: 'not called' });
  t.is((await redirectFor({ ...DEFAULT_CONFIG, redirect: 'none' }, runner)).rules, undefined);
  t.is((await redirectFor({ ...DEFAULT_CONFIG, redirect: 'nftables' }, runner)).rules?.mode, 'nftables');
  t.is((await redirectFor({ ...DEFAULT_CONFIG, redirect: 'iptables' }, runner)).rules?.mode, 'iptables');
});
