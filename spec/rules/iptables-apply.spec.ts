import { spawnSync } from 'node:child_process';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { RulesError } from '../../lib/errors.js';
import type { IPFamily } from '../../lib/model/ip-address.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import type { CommandRunner } from '../../lib/rules/command-runner.js';
import { countingRunner, resolveSystemBinary } from '../../lib/rules/command-runner.js';
import type { IptablesFlavour } from '../../lib/rules/iptables-flavour.js';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import type { ServicePortRules } from '../../lib/rules/rule-backend.js';
import type { Netns } from '../helpers/netns.js';
import { createNetns } from '../helpers/netns.js';
import { ANY, DNS, FIXTURE, FRONTEND, jumpLines, kubeLines, KUBERNETES, ourRuleLines, renderedRuleLines } from './rule-fixtures.js';

/**
 * iptables rules applied for real, in a fresh namespace per test, for each flavour installed. The
 * expected rules are the rendered text: render() writes rules exactly as iptables-save prints them.
 */

const EXPECTED_JUMPS = [
  '-A INPUT -m comment --comment "Ensure that non-local NodePort traffic can flow" -j KUBE-NODEPORT-NON-LOCAL',
  '-A INPUT -m conntrack --ctstate NEW -m comment --comment "refuse service ports without endpoints" -j KUBE-USERSPACE-NO-ENDPOINTS',
  '-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST',
  '-A OUTPUT -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-HOST',
  '-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER',
  '-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER',
];

interface Setup {
  readonly ns: Netns;
  save(family?: IPFamily): Promise<string>;
  backend(runner?: CommandRunner): IptablesRules;
}

const mustRun = process.env['CI'] === 'true';

/**
 * Why a flavour cannot be tested here, or undefined when it can: it needs root for namespaces, the
 * flavour's save tools, and (legacy) a kernel with the legacy nat table, probed in a throwaway
 * namespace. Decided before the tests are declared, so that a test that cannot run is a real skip;
 * with CI=true every flavour must run, and its test fails on what is missing.
 */
async function unusable(flavour: IptablesFlavour): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  if (!(await resolveSystemBinary(`iptables-${flavour}-save`)) || !(await resolveSystemBinary(`ip6tables-${flavour}-save`))) return `iptables-${flavour} is not installed`;
  if (flavour === 'legacy' && spawnSync('unshare', ['-n', 'iptables-legacy', '-w', '5', '-t', 'nat', '-S', 'PREROUTING']).status !== 0) {
    return 'the kernel has no legacy iptables nat table here';
  }
  return undefined;
}
const UNUSABLE = { nft: await unusable('nft'), legacy: await unusable('legacy') };
const flavourTest = (flavour: IptablesFlavour) => (UNUSABLE[flavour] === undefined || mustRun ? test : test.skip);

/** A namespace and the flavour's tools; throws (in CI) naming what is missing. */
async function setup(t: ExecutionContext, flavour: IptablesFlavour): Promise<Setup> {
  if (UNUSABLE[flavour] !== undefined) throw new Error(`cannot test iptables-${flavour}: ${UNUSABLE[flavour]}`);
  const saveV4 = (await resolveSystemBinary(`iptables-${flavour}-save`))!;
  const saveV6 = (await resolveSystemBinary(`ip6tables-${flavour}-save`))!;
  const ns = await createNetns(t);
  const backends: IptablesRules[] = [];
  t.teardown(async () => {
    for (const b of backends) await b.close().catch(() => undefined);
  });
  return {
    ns,
    save: (family = 'IPv4') => ns.sh(family === 'IPv4' ? saveV4 : saveV6),
    backend: (runner = ns.runner) => {
      const b = new IptablesRules({ runner, flavour });
      backends.push(b);
      return b;
    },
  };
}

/** Our rules grouped by chain (iptables-save orders chains its own way; within a chain, order is kept). */
function byChain(lines: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of lines) (out[line.split(' ')[1]!] ??= []).push(line);
  return out;
}

function renderedFor(backend: IptablesRules, rules: readonly ServicePortRules[], family: IPFamily): string[] {
  const text = backend.render(rules, ANY);
  const header = family === 'IPv4' ? '# iptables-restore' : '# ip6tables-restore';
  const section = text.slice(text.indexOf(header)).split('\n# ')[0]!;
  return renderedRuleLines(section);
}

for (const flavour of ['nft', 'legacy'] as const) {
  flavourTest(flavour)(`${flavour}: sync installs exactly the rendered rules, with comments, and the six jumps, for IPv4 and IPv6`, async (t) => {
    const s = await setup(t, flavour);
    const backend = s.backend();
    await backend.start();
    t.is(backend.flavour, flavour);
    await backend.sync(FIXTURE, ANY);
    for (const family of ['IPv4', 'IPv6'] as const) {
      const save = await s.save(family);
      t.deepEqual(byChain(ourRuleLines(save)), byChain(renderedFor(backend, FIXTURE, family)), `${family} rules`);
      t.deepEqual(jumpLines(save).sort(), EXPECTED_JUMPS, `${family} jumps`);
    }
    t.regex(await s.save('IPv4'), /-A KUBE-PORTALS-CONTAINER -d 10\.96\.0\.1\/32 -p tcp -m comment --comment "default\/kubernetes:https" -m tcp --dport 443 -j REDIRECT --to-ports 36000/);
  });

  flavourTest(flavour)(`${flavour}: ports without endpoints get REJECT rules and no NON-LOCAL accept; a family's node port stays in its family; endpoints coming back remove them`, async (t) => {
    const s = await setup(t, flavour);
    const backend = s.backend();
    await backend.start();
    const refused: ServicePortRules[] = [
      { ...FRONTEND, noEndpoints: true, family: 'IPv4', portals: FRONTEND.portals.filter((p) => !p.ip.includes(':')) },
      { ...FRONTEND, proxyPort: 36005, family: 'IPv6', portals: FRONTEND.portals.filter((p) => p.ip.includes(':')) },
      { ...DNS, noEndpoints: true },
      KUBERNETES,
    ];
    await backend.sync(refused, ANY);
    for (const family of ['IPv4', 'IPv6'] as const) {
      const save = await s.save(family);
      t.deepEqual(byChain(ourRuleLines(save)), byChain(renderedFor(backend, refused, family)), `${family} rules`);
      const rejects = ourRuleLines(save).filter((l) => l.startsWith('-A KUBE-USERSPACE-NO-ENDPOINTS '));
      const icmp = family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
      t.deepEqual(rejects.sort(), [
        '-A KUBE-USERSPACE-NO-ENDPOINTS -p tcp -m comment --comment "web/frontend:http" -m tcp --dport 36001 -j REJECT --reject-with tcp-reset',
        `-A KUBE-USERSPACE-NO-ENDPOINTS -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp --dport 36002 -j REJECT --reject-with ${icmp}`,
      ]);
      const nonLocal = ourRuleLines(save).filter((l) => l.startsWith('-A KUBE-NODEPORT-NON-LOCAL '));
      t.deepEqual(
        nonLocal.map((l) => / --dport (\d+) /.exec(l)?.[1]),
        family === 'IPv4' ? [] : ['36005'],
        `${family}: only the served node port is accepted`,
      );
      const nodePortTargets = ourRuleLines(save).filter((l) => l.startsWith('-A KUBE-NODEPORT-CONTAINER ') && l.includes('--dport 30080'));
      t.deepEqual(
        nodePortTargets.map((l) => / --to-ports (\d+)$/.exec(l)?.[1]),
        [family === 'IPv4' ? '36001' : '36005'],
        `${family}: node port 30080 goes to that family's listener`,
      );
    }
    // Endpoints arrive: an incremental sync takes the refusals out.
    await backend.sync(
      refused.map((r) => ({ ...r, noEndpoints: false })),
      ANY,
    );
    for (const family of ['IPv4', 'IPv6'] as const) {
      t.deepEqual(
        ourRuleLines(await s.save(family)).filter((l) => l.startsWith('-A KUBE-USERSPACE-NO-ENDPOINTS ')),
        [],
        `${family}: no REJECT left`,
      );
    }
  });

  flavourTest(flavour)(`${flavour}: a second sync with a changed set leaves nothing stale, and syncing twice changes nothing`, async (t) => {
    const s = await setup(t, flavour);
    const backend = s.backend();
    await backend.start();
    await backend.sync(FIXTURE, ANY);
    const noExternal: ServicePortRules = { ...FRONTEND, portals: FRONTEND.portals.filter((p) => p.kind !== 'externalIP') };
    const metrics: ServicePortRules = {
      ...FRONTEND,
      spn: servicePortName('web', 'frontend', 'metrics'),
      portals: [{ ip: '10.96.0.10', port: 9090, kind: 'clusterIP' }],
      nodePort: 0,
      proxyPort: 36009,
    };
    const changed = [noExternal, metrics, KUBERNETES];
    await backend.sync(changed, ANY);
    const save = await s.save();
    t.deepEqual(byChain(ourRuleLines(save)), byChain(renderedFor(backend, changed, 'IPv4')));
    t.notRegex(save, /203\.0\.113\.7/, 'the removed external IP is gone');
    t.notRegex(save, /kube-dns/, 'the removed service is gone');
    t.regex(save, /--dport 9090 -j REDIRECT --to-ports 36009/, 'the new port is there');

    await backend.sync(changed, ANY);
    t.is(await s.save().then(stripDates), stripDates(save), 'a repeated sync is a no-op');
    t.deepEqual(jumpLines(save).sort(), EXPECTED_JUMPS);
  });

  flavourTest(flavour)(`${flavour}: start() after a crash (rules and duplicated jumps left behind) leaves no duplicates and no stale rules`, async (t) => {
    const s = await setup(t, flavour);
    const crashed = new IptablesRules({ runner: s.ns.runner, flavour });
    await crashed.start();
    await crashed.sync(FIXTURE, ANY);
    // The crashed instance is dropped without close(), as kill -9 would. Make things worse: a jump twice.
    const iptables = (await resolveSystemBinary(`iptables-${flavour}`))!;
    await s.ns.sh(iptables, '-w', '5', '-t', 'nat', '-A', 'OUTPUT', '-m', 'comment', '--comment', 'handle ClusterIPs; NOTE: this must be before the NodePort rules', '-j', 'KUBE-PORTALS-HOST');

    const restarted = s.backend();
    await restarted.start();
    let save = await s.save();
    t.deepEqual(ourRuleLines(save), [], 'the chains were flushed');
    t.deepEqual(jumpLines(save).sort(), EXPECTED_JUMPS, 'each jump exactly once');
    await restarted.sync([KUBERNETES], ANY);
    save = await s.save();
    t.deepEqual(byChain(ourRuleLines(save)), byChain(renderedFor(restarted, [KUBERNETES], 'IPv4')));
    t.deepEqual(jumpLines(save).sort(), EXPECTED_JUMPS);
  });

  flavourTest(flavour)(`${flavour}: a jump deleted behind our back comes back on the next sync`, async (t) => {
    const s = await setup(t, flavour);
    const backend = s.backend();
    await backend.start();
    const iptables = (await resolveSystemBinary(`iptables-${flavour}`))!;
    await s.ns.sh(iptables, '-w', '5', '-t', 'nat', '-F', 'PREROUTING');
    await s.ns.sh(iptables, '-w', '5', '-t', 'nat', '-A', 'PREROUTING', '-j', 'ACCEPT');
    await backend.sync([KUBERNETES], ANY);
    const save = await s.save();
    t.deepEqual(jumpLines(save).sort(), EXPECTED_JUMPS);
    const prerouting = save.split('\n').filter((l) => l.startsWith('-A PREROUTING'));
    t.regex(prerouting[0]!, /-j KUBE-PORTALS-CONTAINER$/, 'the portal jump is first again');
    t.is(prerouting[1], '-A PREROUTING -j ACCEPT', 'rules of others are kept');
  });

  flavourTest(flavour)(`${flavour}: chains edited behind our back are rewritten whole: when an incremental update fails, and at the periodic full resync`, async (t) => {
    const s = await setup(t, flavour);
    let now = 0;
    const backend = new IptablesRules({ runner: s.ns.runner, flavour, now: () => now, fullResyncIntervalMs: 60_000 });
    t.teardown(() => backend.close());
    await backend.start();
    await backend.sync(FIXTURE, ANY);
    const iptables = (await resolveSystemBinary(`iptables-${flavour}`))!;

    // The next delta deletes a rule that is no longer there: it fails, and the chains are rewritten.
    await s.ns.sh(iptables, '-w', '5', '-t', 'nat', '-F', 'KUBE-PORTALS-HOST');
    await backend.sync([FRONTEND, KUBERNETES], ANY);
    t.deepEqual(byChain(ourRuleLines(await s.save())), byChain(renderedFor(backend, [FRONTEND, KUBERNETES], 'IPv4')));

    // A hand edit that no delta touches is repaired by the periodic full rewrite.
    await s.ns.sh(iptables, '-w', '5', '-t', 'nat', '-I', 'KUBE-PORTALS-CONTAINER', '-j', 'RETURN');
    await backend.sync([FRONTEND, KUBERNETES], ANY);
    t.regex(await s.save(), /^-A KUBE-PORTALS-CONTAINER -j RETURN$/m, 'not yet: nothing changed');
    now += 60_000;
    await backend.sync([FRONTEND, KUBERNETES], ANY);
    t.deepEqual(byChain(ourRuleLines(await s.save())), byChain(renderedFor(backend, [FRONTEND, KUBERNETES], 'IPv4')));
  });

  flavourTest(flavour)(`${flavour}: close() removes every chain and jump, and is idempotent`, async (t) => {
    const s = await setup(t, flavour);
    const backend = s.backend();
    await backend.start();
    await backend.sync(FIXTURE, ANY);
    await backend.close();
    await backend.close();
    t.deepEqual(kubeLines(await s.save('IPv4')), []);
    t.deepEqual(kubeLines(await s.save('IPv6')), []);
    await t.throwsAsync(backend.sync(FIXTURE, ANY), { code: 'KUP_ERR_CLOSED' });
  });

  flavourTest(flavour)(`${flavour}: a failed sync throws a RulesError with the command's stderr and leaves the installed rules as they were`, async (t) => {
    const s = await setup(t, flavour);
    let corrupt = false;
    const runner: CommandRunner = (argv, stdin) =>
      s.ns.runner(argv, corrupt && argv[0]!.endsWith('-restore') ? stdin!.replace(/COMMIT\n\*filter/, '-A KUBE-PORTALS-HOST -j NO-SUCH-CHAIN\nCOMMIT\n*filter') : stdin);
    const backend = s.backend(runner);
    await backend.start();
    await backend.sync([KUBERNETES, DNS], ANY);
    const before = await s.save();
    corrupt = true;
    const err = await t.throwsAsync(backend.sync([KUBERNETES], ANY), { instanceOf: RulesError });
    t.regex(err!.message, /iptables-restore failed \(exit \d+\)/);
    t.truthy(err!.stderr);
    t.regex(err!.command!, new RegExp(`iptables-${flavour}-restore --noflush -w 5$`));
    t.is(stripDates(await s.save()), stripDates(before));
  });
}

flavourTest('nft')('each sync runs the same number of commands, however many services: 4 per family (3 chain listings and one iptables-restore)', async (t) => {
  const ns = await createNetns(t);
  const counter = countingRunner(ns.runner);
  const backend = new IptablesRules({ runner: counter.runner, flavour: 'nft', clearConntrack: false });
  t.teardown(() => backend.close());
  await backend.start();
  const services = (n: number): ServicePortRules[] =>
    Array.from({ length: n }, (_, i) => ({
      ...KUBERNETES,
      spn: servicePortName('ns', `s${i}`, 'p'),
      portals: [{ ip: `10.98.${i >> 8}.${i & 255}`, port: 80, kind: 'clusterIP' as const }],
      nodePort: 30000 + i,
    }));
  const counts: number[] = [];
  for (const n of [1, 10, 500, 500]) {
    counter.reset();
    await backend.sync(services(n), ANY);
    counts.push(counter.count());
  }
  t.deepEqual(counts, [8, 8, 8, 6], 'the last sync changed nothing: listings only, no restore');
});

function stripDates(save: string): string {
  return save.replace(/^#.*$/gm, '');
}
