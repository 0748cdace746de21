import type { ExecutionContext } from 'ava';
import { RulesError } from '../../lib/errors.js';
import { servicePortName } from '../../lib/model/service-port-name.js';
import type { CommandRunner } from '../../lib/rules/command-runner.js';
import { countingRunner } from '../../lib/rules/command-runner.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import type { ServicePortRules } from '../../lib/rules/rule-backend.js';
import type { Netns } from '../helpers/netns.js';
import { createNetns, netnsSupport, netnsTestIf } from '../helpers/netns.js';
import { ANY, DNS, FIXTURE, FRONTEND, KUBERNETES, SPECIFIC } from './rule-fixtures.js';

const netnsTest = netnsTestIf(await netnsSupport());

/** The nftables table applied for real, in a fresh namespace per test. */

async function setup(t: ExecutionContext): Promise<{ ns: Netns; backend(runner?: CommandRunner): NftablesRules; table(): Promise<string> }> {
  const ns = await createNetns(t);
  const backends: NftablesRules[] = [];
  t.teardown(async () => {
    for (const b of backends) await b.close().catch(() => undefined);
  });
  return {
    ns,
    backend: (runner = ns.runner) => {
      const b = new NftablesRules({ runner });
      backends.push(b);
      return b;
    },
    table: async () => {
      const listed = await ns.try('nft', ['list', 'table', 'inet', 'kube-userspace-proxy']);
      return listed.code === 0 ? listed.stdout : '';
    },
  };
}

/** Map elements as nft lists them: `key comment "spn" : value`, one per entry, sorted. */
function elements(listing: string, map: string): string[] {
  const block = new RegExp(`(?:map|set) ${map} \\{[^}]*?elements = \\{([^}]*)\\}`, 's').exec(listing);
  if (!block) return [];
  return block[1]!
    .split(',')
    .map((e) => e.replace(/\s+/g, ' ').trim())
    .filter(Boolean)
    .sort();
}

netnsTest('sync installs one table with every portal as a commented map element', async (t) => {
  const s = await setup(t);
  const backend = s.backend();
  await backend.start();
  await backend.sync(FIXTURE, ANY);
  const table = await s.table();
  t.deepEqual(elements(table, 'portals-v4'), [
    '10.96.0.1 . tcp . 443 comment "default/kubernetes:https" : 36000',
    '10.96.0.10 . tcp . 80 comment "web/frontend:http" : 36001',
    '10.96.0.53 . udp . 53 comment "kube-system/kube-dns:dns" : 36002',
    '198.51.100.9 . tcp . 80 comment "web/frontend:http" : 36001',
  ]);
  t.deepEqual(elements(table, 'externals-v4'), ['203.0.113.7 . tcp . 80 comment "web/frontend:http" : 36001']);
  t.deepEqual(elements(table, 'portals-v6'), ['fd00:96::10 . tcp . 80 comment "web/frontend:http" : 36001', 'fd00:96::53 . udp . 53 comment "kube-system/kube-dns:dns" : 36002']);
  for (const v of ['v4', 'v6']) {
    t.deepEqual(elements(table, `nodeports-${v}`), ['tcp . 30080 comment "web/frontend:http" : 36001', 'udp . 30053 comment "kube-system/kube-dns:dns" : 36002']);
  }
  t.deepEqual(elements(table, 'no-endpoints'), []);
  t.is((table.match(/^\t\t(meta|ip6?|fib) /gm) ?? []).length, 12, 'twelve nat rules');
  t.is((table.match(/^\t\tct state new .* reject/gm) ?? []).length, 2, 'two reject rules');
  t.regex(table, /dnat ip6 to ip6 saddr:ip6 daddr \. meta l4proto \. th dport map @portals-v6/);

  // A port without endpoints joins the no-endpoints set; a family's node port stays in its family.
  await backend.sync([{ ...DNS, noEndpoints: true }, { ...FRONTEND, family: 'IPv6' }, KUBERNETES], ANY);
  const refusing = await s.table();
  t.deepEqual(elements(refusing, 'no-endpoints'), ['udp . 36002 comment "kube-system/kube-dns:dns"']);
  t.deepEqual(elements(refusing, 'nodeports-v4'), ['udp . 30053 comment "kube-system/kube-dns:dns" : 36002']);
  t.deepEqual(elements(refusing, 'nodeports-v6'), ['tcp . 30080 comment "web/frontend:http" : 36001', 'udp . 30053 comment "kube-system/kube-dns:dns" : 36002']);
});

netnsTest('a changed set leaves nothing stale, a repeated sync changes nothing, and a specific bind address switches to DNAT', async (t) => {
  const s = await setup(t);
  const backend = s.backend();
  await backend.start();
  await backend.sync(FIXTURE, ANY);
  const noExternal: ServicePortRules = { ...FRONTEND, portals: FRONTEND.portals.filter((p) => p.kind !== 'externalIP') };
  const metrics: ServicePortRules = { ...FRONTEND, spn: servicePortName('web', 'frontend', 'metrics'), portals: [{ ip: '10.96.0.10', port: 9090, kind: 'clusterIP' }], nodePort: 0, proxyPort: 36009 };
  await backend.sync([noExternal, metrics, KUBERNETES], ANY);
  const table = await s.table();
  t.deepEqual(elements(table, 'externals-v4'), []);
  t.notRegex(table, /kube-dns|203\.0\.113\.7/);
  t.regex(table, /10\.96\.0\.10 \. tcp \. 9090 comment "web\/frontend:metrics" : 36009/);
  await backend.sync([noExternal, metrics, KUBERNETES], ANY);
  t.is(await s.table(), table);

  await backend.sync(FIXTURE, SPECIFIC);
  const specific = await s.table();
  t.regex(specific, /set nodeport-ips-v4 \{[^}]*elements = \{ 10\.0\.0\.5, 192\.168\.1\.5 \}/s);
  t.regex(specific, /ip daddr @nodeport-ips-v4 meta l4proto \{ tcp, udp \} dnat ip to 10\.0\.0\.5:meta l4proto \. th dport map @nodeports/);
  t.notRegex(specific, /redirect/);
});

netnsTest('start() after a crash replaces the leftover table; close() removes it and is idempotent', async (t) => {
  const s = await setup(t);
  const crashed = new NftablesRules({ runner: s.ns.runner });
  await crashed.start();
  await crashed.sync(FIXTURE, ANY);
  const restarted = s.backend();
  await restarted.start();
  t.deepEqual(elements(await s.table(), 'portals-v4'), [], 'the leftovers are gone');
  await restarted.sync([DNS], ANY);
  t.is(elements(await s.table(), 'portals-v4').length, 1);
  const listed = await s.ns.sh('nft', 'list', 'tables');
  t.is(listed.split('\n').filter((l) => l.includes('kube-userspace-proxy')).length, 1, 'one table');
  await restarted.close();
  await restarted.close();
  t.is(await s.table(), '');
  t.notRegex(await s.ns.sh('nft', 'list', 'ruleset'), /kube-userspace-proxy/);
});

netnsTest("a failed sync throws a RulesError with nft's stderr and leaves the installed table as it was", async (t) => {
  const s = await setup(t);
  let corrupt = false;
  const runner: CommandRunner = (argv, stdin) => s.ns.runner(argv, corrupt && argv.includes('-f') ? stdin!.replace('chain output {', 'chain output {\n\t\tbogus statement') : stdin);
  const backend = s.backend(runner);
  await backend.start();
  await backend.sync(FIXTURE, ANY);
  const before = await s.table();
  corrupt = true;
  const err = await t.throwsAsync(backend.sync([KUBERNETES], ANY), { instanceOf: RulesError });
  t.regex(err!.message, /^nft -f failed \(exit 1\): .*Error: /);
  t.is(await s.table(), before);
});

netnsTest('each sync is one nft execution, however many services', async (t) => {
  const s = await setup(t);
  const counter = countingRunner(s.ns.runner);
  const backend = s.backend(counter.runner);
  await backend.start();
  const services = (n: number): ServicePortRules[] =>
    Array.from({ length: n }, (_, i) => ({
      ...KUBERNETES,
      spn: servicePortName('ns', `s${i}`, 'p'),
      portals: [{ ip: `10.98.${i >> 8}.${i & 255}`, port: 80, kind: 'clusterIP' as const }],
      nodePort: 30000 + i,
    }));
  const counts: number[] = [];
  for (const n of [1, 10, 2000]) {
    counter.reset();
    await backend.sync(services(n), ANY);
    counts.push(counter.count());
  }
  t.deepEqual(counts, [1, 1, 1]);
});
