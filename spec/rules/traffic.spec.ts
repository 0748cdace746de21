import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { servicePortName } from '../../lib/model/service-port-name.js';
import type { CommandRunner } from '../../lib/rules/command-runner.js';
import { requireSystemBinary, spawnRunner } from '../../lib/rules/command-runner.js';
import { IptablesRules } from '../../lib/rules/iptables-rules.js';
import { NftablesRules } from '../../lib/rules/nftables-rules.js';
import { routeSourceAddress } from '../../lib/rules/route-source.js';
import type { RuleBackend, RuleContext, ServicePortRules } from '../../lib/rules/rule-backend.js';
import { waitFor } from '../helpers/wait-for.js';
import type { Netns } from '../helpers/netns.js';
import { createNetns, netnsSupport, netnsTestIf } from '../helpers/netns.js';

const netnsTest = netnsTestIf(await netnsSupport());

/**
 * Real packets through the rules. A "node" namespace holds the rules, a server on the proxy port and a
 * dummy uplink with the host IP 10.0.0.5; a "pod" namespace hangs off it by a veth pair (pod 10.1.0.2,
 * node side 10.1.0.1). Traffic from the node itself takes the HOST chains (DNAT to 10.0.0.5), traffic
 * from the pod the CONTAINER chains (REDIRECT to 10.1.0.1, the address it arrived on).
 */

const PEER = fileURLToPath(new URL('./traffic-peer.js', import.meta.url));
const PROXY_PORT = 41000;

const WEB: ServicePortRules = {
  spn: servicePortName('default', 'web', 'http'),
  protocol: 'TCP',
  portals: [{ ip: '10.96.0.1', port: 80, kind: 'clusterIP' }],
  nodePort: 30080,
  proxyPort: PROXY_PORT,
};
const DNS: ServicePortRules = {
  spn: servicePortName('kube-system', 'dns', 'dns'),
  protocol: 'UDP',
  portals: [{ ip: '10.96.0.53', port: 53, kind: 'clusterIP' }],
  nodePort: 0,
  proxyPort: PROXY_PORT,
};
const CONTEXT: RuleContext = { bindAddress: '0.0.0.0', hostIPv4: '10.0.0.5', hostIPv6: undefined, nodePortIPs: undefined };

const BACKENDS: Record<string, (runner: CommandRunner) => RuleBackend> = {
  iptables: (runner) => new IptablesRules({ runner, families: ['IPv4'] }),
  nftables: (runner) => new NftablesRules({ runner, families: ['IPv4'] }),
};

interface Topology {
  readonly node: Netns;
  readonly pod: Netns;
}

async function topology(t: ExecutionContext): Promise<Topology> {
  const node = await createNetns(t);
  const pod = await createNetns(t);
  // The uplink: a veth pair whose far end stays in the node namespace (kernels without the dummy driver exist).
  await node.sh('ip', 'link', 'add', 'kup0', 'type', 'veth', 'peer', 'name', 'kup0-peer');
  await node.sh('ip', 'addr', 'add', '10.0.0.5/24', 'dev', 'kup0');
  await node.sh('ip', 'link', 'set', 'kup0-peer', 'up');
  await node.sh('ip', 'link', 'set', 'kup0', 'up');
  // A default route, as every node has: without one, connect() to a ClusterIP fails before OUTPUT's DNAT.
  await node.sh('ip', 'route', 'add', 'default', 'dev', 'kup0');
  const veth = `kv${randomBytes(3).toString('hex')}`;
  await node.sh('ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  await node.sh('ip', 'addr', 'add', '10.1.0.1/24', 'dev', veth);
  await node.sh('ip', 'link', 'set', veth, 'up');
  await pod.sh('ip', 'addr', 'add', '10.1.0.2/24', 'dev', 'eth0');
  await pod.sh('ip', 'link', 'set', 'eth0', 'up');
  await pod.sh('ip', 'route', 'add', 'default', 'via', '10.1.0.1');
  return { node, pod };
}

/** Starts the server on the proxy port in the node namespace; killed in teardown. */
async function serve(t: ExecutionContext, ns: Netns): Promise<void> {
  const ip = await requireSystemBinary('ip');
  const child = spawn(ip, ['netns', 'exec', ns.name, process.execPath, PEER, 'serve', String(PROXY_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the server to listen', () => out.includes('"ready":true'), 10_000);
}

async function client(ns: Netns, proto: 'tcp' | 'udp', host: string, port: number): Promise<{ reply?: string; from?: string; error?: string }> {
  const result = await ns.runner([process.execPath, PEER, proto, host, String(port)]);
  return JSON.parse(result.stdout.trim() || '{"error":"no output"}') as { reply?: string; from?: string; error?: string };
}

for (const [name, make] of Object.entries(BACKENDS)) {
  netnsTest(`${name}: ClusterIP, NodePort and UDP portals reach the proxy port from the node (DNAT to the host IP) and from a pod (REDIRECT)`, async (t) => {
    const { node, pod } = await topology(t);
    const backend = make(node.runner);
    t.teardown(() => backend.close());
    await backend.start();
    await backend.sync([WEB, DNS], CONTEXT);
    await serve(t, node);

    t.deepEqual(await client(node, 'tcp', '10.96.0.1', 80), { reply: `tcp via 10.0.0.5:${PROXY_PORT}` }, 'node → ClusterIP (KUBE-PORTALS-HOST)');
    t.deepEqual(await client(pod, 'tcp', '10.96.0.1', 80), { reply: `tcp via 10.1.0.1:${PROXY_PORT}` }, 'pod → ClusterIP (KUBE-PORTALS-CONTAINER)');
    t.deepEqual(await client(node, 'tcp', '10.0.0.5', 30080), { reply: `tcp via 10.0.0.5:${PROXY_PORT}` }, 'node → NodePort (KUBE-NODEPORT-HOST)');
    t.deepEqual(await client(pod, 'tcp', '10.1.0.1', 30080), { reply: `tcp via 10.1.0.1:${PROXY_PORT}` }, 'pod → NodePort (KUBE-NODEPORT-CONTAINER)');
    // The reply must come back from the portal, or DNS clients drop it: conntrack un-NATs it.
    t.deepEqual(await client(pod, 'udp', '10.96.0.53', 53), { reply: 'udp from 10.1.0.2', from: '10.96.0.53:53' }, 'pod → UDP ClusterIP');
    t.deepEqual(await client(node, 'udp', '10.96.0.53', 53), { reply: 'udp from 10.0.0.5', from: '10.96.0.53:53' }, 'node → UDP ClusterIP');

    // Removing the UDP portal clears its conntrack entries, so a client reusing its source port is not
    // sent to the old proxy port by a stale NAT decision.
    const conntrack = await requireSystemBinary('conntrack');
    const entries = async (): Promise<number> => {
      const listed = await node.runner([conntrack, '-L', '-p', 'udp', '--orig-dst', '10.96.0.53']);
      return listed.stdout.split('\n').filter((l) => l.includes('dst=10.96.0.53')).length;
    };
    t.true((await entries()) >= 2, 'UDP conntrack entries exist while the portal does');
    await backend.sync([WEB], CONTEXT);
    t.is(await entries(), 0, 'UDP conntrack entries of the removed portal are gone');

    await backend.close();
    t.deepEqual(await client(node, 'tcp', '10.96.0.1', 80), { error: 'timeout' }, 'after close() the portal no longer answers');
  });
}

netnsTest("UDP from the node needs the right DNAT target: iptables the route's source address as host IP, nftables DNATs to the packet's own source", async (t) => {
  const { node } = await topology(t);
  await serve(t, node);
  t.is(await routeSourceAddress(node.runner, '10.96.0.53'), '10.0.0.5', 'the helper names the uplink address');
  t.is(await routeSourceAddress(node.runner, '10.1.0.2'), '10.1.0.1');
  t.is(await routeSourceAddress(node.runner, '203.0.113.1').then(() => 'ok'), 'ok');
  // A host IP that is not the route's source (10.1.0.1, the pod-facing address): the reply leaves from
  // 10.0.0.5, conntrack cannot un-NAT it, and the client sees it come from the wrong address.
  const wrongHost = { ...CONTEXT, hostIPv4: '10.1.0.1' };
  const iptables = new IptablesRules({ runner: node.runner, families: ['IPv4'] });
  await iptables.start();
  await iptables.sync([DNS], wrongHost);
  t.deepEqual(await client(node, 'udp', '10.96.0.53', 53), { reply: 'udp from 10.0.0.5', from: `10.0.0.5:${PROXY_PORT}` });
  await iptables.close();
  // nftables does not depend on the host IP at all.
  const nftables = new NftablesRules({ runner: node.runner, families: ['IPv4'] });
  t.teardown(() => nftables.close());
  await nftables.start();
  await nftables.sync([DNS], wrongHost);
  t.deepEqual(await client(node, 'udp', '10.96.0.53', 53), { reply: 'udp from 10.0.0.5', from: '10.96.0.53:53' });
});

test('the host runner itself spawns without a shell and reports exit codes and stderr', async (t) => {
  const runner = spawnRunner();
  const sh = await requireSystemBinary('sh');
  t.deepEqual(await runner([sh, '-c', 'cat; echo err >&2; exit 3'], 'in'), { code: 3, stdout: 'in', stderr: 'err\n' });
  t.is((await runner(['/nonexistent/binary'])).code, 127);
});
