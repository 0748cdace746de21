import { cleanupLeftovers } from '../../lib/rules/cleanup.js';
import { resolveSystemBinary } from '../../lib/rules/command-runner.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import { ANY, createNetns, FIXTURE, kubeLines, netnsTest, tempDir } from './netns-fixture.js';

/**
 * The rules the legacy kube-proxy userspace proxier leaves, written by hand the way it wrote them
 * (one rule per service port in each chain, plus the five jumps), next to rules of others that must stay.
 */
const LEGACY_NAT = `*nat
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
:DOCKER - [0:0]
-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER
-A PREROUTING -j DOCKER
-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER
-A OUTPUT -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-HOST
-A OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-HOST
-A DOCKER -j RETURN
COMMIT
*filter
:KUBE-NODEPORT-NON-LOCAL - [0:0]
-A INPUT -m comment --comment "Ensure that non-local NodePort traffic can flow" -j KUBE-NODEPORT-NON-LOCAL
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
`;

const RULES_V4 = `*nat
-A KUBE-PORTALS-CONTAINER -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j REDIRECT --to-ports 36000
-A KUBE-PORTALS-HOST -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https" -m tcp --dport 443 -j DNAT --to-destination 10.0.0.5:36000
-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "default/web:" -m tcp --dport 30080 -j REDIRECT --to-ports 36001
COMMIT
*filter
-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "default/web:" -m tcp --dport 36001 -m state --state NEW -j ACCEPT
COMMIT
`;

netnsTest('cleanupLeftovers removes the legacy userspace chains from both iptables flavours, IPv4 and IPv6, our nft table and recorded addresses, and keeps everything else', async (t) => {
  const ns = await createNetns(t);
  // First, as a crashed --redirect nftables run would leave it (its start() would remove the iptables chains).
  const nft = new NftablesRules({ runner: ns.runner });
  await nft.start();
  await nft.sync(FIXTURE, ANY);
  const flavours: ('nft' | 'legacy')[] = [];
  for (const flavour of ['nft', 'legacy'] as const) {
    const restore4 = await resolveSystemBinary(`iptables-${flavour}-restore`);
    const restore6 = await resolveSystemBinary(`ip6tables-${flavour}-restore`);
    if (!restore4 || !restore6) {
      t.log(`iptables-${flavour} not installed: not covered here`);
      continue;
    }
    const v4 = await ns.try(restore4, ['--noflush'], LEGACY_NAT + RULES_V4);
    if (v4.code !== 0 && flavour === 'legacy') {
      t.log(`skipped the legacy flavour: the kernel has no legacy tables here (${v4.stderr.trim()})`);
      continue;
    }
    t.is(v4.code, 0, v4.stderr);
    const v6 = await ns.try(restore6, ['--noflush'], LEGACY_NAT);
    t.is(v6.code, 0, v6.stderr);
    flavours.push(flavour);
  }
  const { removed } = await cleanupLeftovers(ns.runner, { stateDir: await tempDir(t) });
  const expected = flavours.flatMap((f) =>
    ['iptables', 'ip6tables'].flatMap((bin) =>
      ['nat KUBE-PORTALS-CONTAINER', 'nat KUBE-PORTALS-HOST', 'nat KUBE-NODEPORT-CONTAINER', 'nat KUBE-NODEPORT-HOST', 'filter KUBE-NODEPORT-NON-LOCAL'].map((c) => `${bin}-${f} ${c}`),
    ),
  );
  t.deepEqual(removed, [...expected, 'nft table inet kube-userspace-proxy']);

  for (const f of flavours) {
    for (const bin of ['iptables', 'ip6tables']) {
      const save = await ns.sh(`${bin}-${f}-save`);
      t.deepEqual(kubeLines(save), [], `${bin}-${f}: nothing of ours left`);
      t.regex(save, /^-A PREROUTING -j DOCKER$/m, `${bin}-${f}: other jumps stay`);
      t.regex(save, /^-A DOCKER -j RETURN$/m, `${bin}-${f}: other chains stay`);
      t.regex(save, /^-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT$/m, `${bin}-${f}: other filter rules stay`);
    }
  }
  t.notRegex(await ns.sh('nft', 'list', 'tables'), /kube-userspace-proxy/);

  const again = await cleanupLeftovers(ns.runner, { stateDir: await tempDir(t) });
  t.deepEqual(again.removed, [], 'idempotent');
});

netnsTest('starting one mode removes what a crashed run of the other mode left', async (t) => {
  const ns = await createNetns(t);
  const restore = await resolveSystemBinary('iptables-nft-restore');
  if (!restore) throw new Error('iptables-nft-restore is not installed');
  t.is((await ns.try(restore, ['--noflush'], LEGACY_NAT + RULES_V4)).code, 0);
  const nft = new NftablesRules({ runner: ns.runner, families: ['IPv4'] });
  t.teardown(() => nft.close());
  await nft.start();
  t.deepEqual(kubeLines(await ns.sh('iptables-nft-save')), []);
});
