import { readFile } from 'node:fs/promises';
import type { ExecutionContext } from 'ava';
import { AddressAssigner } from '../../lib/rules/address-assigner.js';
import { netnsId, stateFile } from '../../lib/rules/address-state.js';
import { cleanupLeftovers } from '../../lib/rules/cleanup.js';
import type { CommandRunner } from '../../lib/rules/command-runner.js';
import { countingRunner } from '../../lib/rules/command-runner.js';
import type { Netns } from '../helpers/netns.js';
import { createNetns, netnsSupport, netnsTestIf, tempDir } from '../helpers/netns.js';

const netnsTest = netnsTestIf(await netnsSupport());

/** `none --assign-service-ips`: addresses really added to and removed from an interface in a fresh namespace. */

async function setup(
  t: ExecutionContext,
): Promise<{ ns: Netns; stateDir: string; addresses(dev?: string): Promise<string[]>; assigner(opts?: { runner?: CommandRunner; interface?: string }): AddressAssigner }> {
  const ns = await createNetns(t);
  const stateDir = await tempDir(t);
  const made: AddressAssigner[] = [];
  t.teardown(async () => {
    for (const a of made) await a.close().catch(() => undefined);
  });
  return {
    ns,
    stateDir,
    addresses: async (dev = 'lo') => {
      const out = await ns.sh('ip', '-o', 'addr', 'show', 'dev', dev);
      return [...out.matchAll(/\binet6? (\S+)/g)]
        .map((m) => m[1]!)
        .filter((a) => a !== '127.0.0.1/8' && a !== '::1/128')
        .sort();
    },
    assigner: (opts = {}) => {
      const a = new AddressAssigner({ runner: opts.runner ?? ns.runner, stateDir, ...(opts.interface ? { interface: opts.interface } : {}) });
      made.push(a);
      return a;
    },
  };
}

netnsTest('sync adds each service IP as a host address (/32, /128) and removes those that went, in one ip -batch per sync', async (t) => {
  const s = await setup(t);
  const counter = countingRunner(s.ns.runner);
  const assigner = s.assigner({ runner: counter.runner });
  await assigner.start();
  counter.reset();
  await assigner.sync(['10.96.0.1', '203.0.113.7', 'fd00:96:0:0::1']);
  t.is(counter.count(), 1);
  t.deepEqual(await s.addresses(), ['10.96.0.1/32', '203.0.113.7/32', 'fd00:96::1/128']);
  t.deepEqual(assigner.assigned, ['10.96.0.1', '203.0.113.7', 'fd00:96::1']);

  counter.reset();
  await assigner.sync(['10.96.0.1', '10.96.0.2']);
  t.is(counter.count(), 1);
  t.deepEqual(await s.addresses(), ['10.96.0.1/32', '10.96.0.2/32']);

  counter.reset();
  await assigner.sync(['10.96.0.2', '10.96.0.1']);
  t.is(counter.count(), 0, 'nothing to change, nothing run');

  const file = stateFile(s.stateDir, await netnsId(s.ns.runner));
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { interface: 'lo', addresses: ['10.96.0.1', '10.96.0.2'] });

  await assigner.close();
  await assigner.close();
  t.deepEqual(await s.addresses(), []);
  await t.throwsAsync(readFile(file, 'utf8'), { code: 'ENOENT' });
});

netnsTest('addresses that were on the interface before start() are never touched', async (t) => {
  const s = await setup(t);
  await s.ns.sh('ip', 'addr', 'add', '10.96.0.1/32', 'dev', 'lo');
  const assigner = s.assigner();
  await assigner.start();
  await assigner.sync(['10.96.0.1', '10.96.0.2']);
  t.deepEqual(assigner.assigned, ['10.96.0.2']);
  await assigner.sync([]);
  await assigner.close();
  t.deepEqual(await s.addresses(), ['10.96.0.1/32']);
});

netnsTest('a restart after a crash removes what the crashed run added; so does cleanupLeftovers', async (t) => {
  const s = await setup(t);
  const crashed = new AddressAssigner({ runner: s.ns.runner, stateDir: s.stateDir });
  await crashed.start();
  await crashed.sync(['10.96.0.1', 'fd00:96::1']);
  // No close(): the process was killed.
  const restarted = s.assigner();
  await restarted.start();
  t.deepEqual(await s.addresses(), [], 'start() removed the leftovers');
  await restarted.sync(['10.96.0.3']);
  t.deepEqual(await s.addresses(), ['10.96.0.3/32']);

  // And crash again: --cleanup finds it from the record.
  const { removed } = await cleanupLeftovers(s.ns.runner, { iptables: false, nftables: false, stateDir: s.stateDir });
  t.deepEqual(removed, ['address 10.96.0.3/32 dev lo']);
  t.deepEqual(await s.addresses(), []);
  t.deepEqual((await cleanupLeftovers(s.ns.runner, { iptables: false, nftables: false, stateDir: s.stateDir })).removed, []);
});

netnsTest('another interface can be used (--assign-service-ips=IFACE), and a bad name is refused up front', async (t) => {
  const s = await setup(t);
  await s.ns.sh('ip', 'link', 'add', 'kup-svc0', 'type', 'veth', 'peer', 'name', 'kup-svc0p');
  const assigner = s.assigner({ interface: 'kup-svc0' });
  await assigner.start();
  await assigner.sync(['10.96.0.7', 'fd00:96::7']);
  t.deepEqual(await s.addresses('kup-svc0'), ['10.96.0.7/32', 'fd00:96::7/128']);
  await assigner.close();
  t.deepEqual(await s.addresses('kup-svc0'), []);
  t.throws(() => new AddressAssigner({ interface: 'lo; rm -rf /' }), { code: 'KUP_ERR_RULES' });
});

netnsTest('an interface that does not exist fails start() with a RulesError', async (t) => {
  const s = await setup(t);
  const err = await t.throwsAsync(s.assigner({ interface: 'kup-missing0' }).start(), { code: 'KUP_ERR_RULES' });
  t.regex(err!.message, /ip address show dev kup-missing0 failed/);
});
