/**
 * Service semantics of the data path on a real network, in each redirect mode: a dual-stack
 * Service's IPv4 portals reach only IPv4 endpoints and its IPv6 portals only IPv6 ones, NodePorts
 * answer in both families, and a service port without endpoints refuses at once — TCP clients get
 * "connection refused", UDP clients an ICMP port unreachable — until endpoints appear, when it
 * serves. One topology (node, client node, three dual-stack pods) per mode; see spec/helpers/netns.ts.
 *
 * These tests need root and `ip netns`. Elsewhere they are skipped with a message, except when
 * CI=true: there they must run.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { sliceYaml } from '../helpers/agent-fixture.js';
import { createTopology, netnsSupport, netnsTestIf } from '../helpers/netns.js';
import type { NetnsProcess, Pod, Topology } from '../helpers/netns.js';
import { httpGet, tcpRefused, udpAsk, udpRefused } from '../helpers/netns-probes.js';
import { CLI } from '../helpers/process.js';
import { BACKEND } from '../helpers/redirect-scenario.js';
import { waitFor } from '../helpers/wait-for.js';

const TOOLS = ['iptables', 'ip6tables', 'nft', 'curl', 'socat', 'sysctl'];
const support = await netnsSupport(TOOLS);
const nsTest = netnsTestIf(support, 'data-path semantics tests');

const MODES = [
  { title: 'iptables', flags: ['--redirect', 'iptables'] },
  { title: 'nftables', flags: ['--redirect', 'nftables'] },
  { title: 'none --assign-service-ips', flags: ['--redirect', 'none', '--assign-service-ips'] },
  // Listeners closed and reopened with workers accepting on them and holding UDP sessions.
  { title: 'none --assign-service-ips --workers 2', flags: ['--redirect', 'none', '--assign-service-ips', '--workers', '2'] },
] as const;

/** Second octet of each mode's addresses (10.X.*, fd00:X:*), apart from redirect-modes.spec.ts's. */
const blockOf = (mode: number): number => 170 + mode;

/** A change reaches the kernel within one sync (--min-sync-period 0s); generous for loaded CI machines. */
const SYNC_DEADLINE_MS = 10_000;
const STOP_GRACE_MS = 5000;

const PORTS = { http: 80, dns: 53, podHttp: 8080, podDns: 5353, nodeHttp: 30080, nodeDns: 30053, emptyNodeHttp: 30081, emptyNodeDns: 30054 } as const;

function precondition(t: ExecutionContext): boolean {
  if (support.ok) return true;
  t.fail(`CI=true but the data-path semantics tests cannot run: ${support.reason}`);
  return false;
}

/** Runs `fn`; on failure fails the test with `what` and the reason. */
async function attempt<T>(t: ExecutionContext, what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    t.fail(`${what}: ${(err as Error).message}`);
    return undefined;
  }
}

function serviceYaml(name: string, clusterIPs: readonly string[], nodePorts: { http: number; dns: number }): string {
  const dual = clusterIPs.length > 1;
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${name}`,
    '  namespace: default',
    'spec:',
    '  type: NodePort',
    `  clusterIP: "${clusterIPs[0]}"`,
    `  clusterIPs: [${clusterIPs.map((ip) => `"${ip}"`).join(', ')}]`,
    `  ipFamilies: [${dual ? 'IPv4, IPv6' : 'IPv4'}]`,
    `  ipFamilyPolicy: ${dual ? 'RequireDualStack' : 'SingleStack'}`,
    '  ports:',
    `    - {name: http, protocol: TCP, port: ${PORTS.http}, targetPort: ${PORTS.podHttp}, nodePort: ${nodePorts.http}}`,
    `    - {name: dns, protocol: UDP, port: ${PORTS.dns}, targetPort: ${PORTS.podDns}, nodePort: ${nodePorts.dns}}`,
    '',
  ].join('\n');
}

function slice(service: string, name: string, family: 'IPv4' | 'IPv6', ips: readonly string[]): string {
  const text = sliceYaml(
    service,
    name,
    [
      { name: 'http', port: PORTS.podHttp },
      { name: 'dns', port: PORTS.podDns, protocol: 'UDP' },
    ],
    ips.map((ip) => ({ ip })),
  );
  return family === 'IPv4' ? text : text.replace('addressType: IPv4', 'addressType: IPv6');
}

interface World {
  readonly topo: Topology;
  readonly write: (name: string, text: string) => Promise<void>;
  readonly remove: (name: string) => Promise<void>;
  readonly start: (flags: readonly string[]) => NetnsProcess;
}

/**
 * The topology with a backend in pod-1 and pod-2 (both families; pod-3 is a client), and a manifest
 * directory: Service `dual` (IPv4 and IPv6 ClusterIPs; its IPv4 slice lists pod-1 and its IPv6 slice
 * pod-2, so the answering pod tells the family of the endpoint) and Service `empty` (no slice yet).
 */
async function createWorld(t: ExecutionContext, block: number): Promise<World> {
  const topo = await createTopology(t, { block, pods: 3, ipv6: true });
  const [pod1, pod2] = topo.pods as readonly [Pod, Pod, Pod];
  const backends = [pod1, pod2].map((pod) =>
    topo.spawnNode(pod.ns, [BACKEND, '--name', pod.name, '--host', pod.ip, '--host6', pod.ip6!, '--tcp', String(PORTS.podHttp), '--udp', String(PORTS.podDns)]),
  );
  await Promise.all(
    backends.map((b) =>
      waitFor(
        `backend in ${b.ns} ready`,
        () => {
          if (b.hasExited()) throw new Error(`backend exited: ${b.stderr()}`);
          return b.stdout().includes('"ready":true');
        },
        30_000,
      ),
    ),
  );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-semantics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const write = async (name: string, text: string): Promise<void> => {
    const tmp = path.join(dir, `.${name}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, path.join(dir, name));
  };
  await write('dual.yaml', serviceYaml('dual', [topo.addr(200, 10), topo.addr6(200, 10)], { http: PORTS.nodeHttp, dns: PORTS.nodeDns }));
  await write('dual-slices.yaml', [slice('dual', 'dual-v4', 'IPv4', [pod1.ip]), slice('dual', 'dual-v6', 'IPv6', [pod2.ip6!])].join('---\n'));
  await write('empty.yaml', serviceYaml('empty', [topo.addr(200, 20)], { http: PORTS.emptyNodeHttp, dns: PORTS.emptyNodeDns }));
  const start = (flags: readonly string[]): NetnsProcess => {
    const args = [...flags, '--manifests', dir, '--min-sync-period', '0s', '--log-format', 'json', '--log-level', 'info'];
    const p = topo.spawnNode(topo.node, [CLI, ...args]);
    // Gracefully first, so that the agent removes what it recorded outside the namespace.
    t.teardown(async () => {
      if (p.hasExited()) return;
      p.child.kill('SIGTERM');
      await Promise.race([p.exited, new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())]);
    });
    t.teardown(() => {
      if (!t.passed) t.log(`agent stderr:\n${p.stderr().trim().split('\n').slice(-40).join('\n')}`);
    });
    return p;
  };
  return { topo, write, remove: (name) => rm(path.join(dir, name), { force: true }), start };
}

for (const [m, mode] of MODES.entries()) {
  nsTest(`${mode.title}: dual-stack portals reach their own family's pods, NodePorts answer in both families, and a port without endpoints refuses until endpoints appear`, async (t) => {
    if (!precondition(t)) return;
    const started = Date.now();
    const { topo, write, remove, start } = await createWorld(t, blockOf(m));
    const client = topo.pods[2]!;
    const dual = { v4: topo.addr(200, 10), v6: topo.addr6(200, 10) };
    const empty = topo.addr(200, 20);
    const agent = start(mode.flags);
    await waitFor(
      'the agent serving the dual-stack service',
      async () => {
        if (agent.hasExited()) throw new Error(`the agent exited:\n${agent.stderr()}`);
        return httpGet(topo, client.ns, dual.v4, PORTS.http, 2);
      },
      60_000,
      200,
    );

    // 1. Family separation: round robin over mixed endpoints would alternate pods within four requests.
    const answers = async (what: string, n: number, probe: () => Promise<string>): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const a = await attempt(t, `${what} #${i + 1}`, () => waitFor(what, probe, 5000, 200));
        if (a !== undefined) out.push(a);
      }
      return out;
    };
    t.deepEqual(await answers('TCP to the IPv4 ClusterIP', 4, () => httpGet(topo, client.ns, dual.v4, PORTS.http)), Array(4).fill('pod-1'), 'IPv4 ClusterIP: the IPv4 pod only');
    t.deepEqual(await answers('TCP to the IPv6 ClusterIP', 4, () => httpGet(topo, client.ns, dual.v6, PORTS.http)), Array(4).fill('pod-2'), 'IPv6 ClusterIP: the IPv6 pod only');
    t.deepEqual(await answers('UDP to the IPv4 ClusterIP', 3, () => udpAsk(topo, client.ns, dual.v4, PORTS.dns)), Array(3).fill('pod-1'), 'IPv4 ClusterIP over UDP');
    t.deepEqual(await answers('UDP to the IPv6 ClusterIP', 3, () => udpAsk(topo, client.ns, dual.v6, PORTS.dns)), Array(3).fill('pod-2'), 'IPv6 ClusterIP over UDP');

    // 2. NodePorts in both families, from the client node, each reaching its own family's pod.
    t.deepEqual(await answers('TCP to the IPv4 NodePort', 2, () => httpGet(topo, topo.client, topo.nodeIP, PORTS.nodeHttp)), ['pod-1', 'pod-1']);
    t.deepEqual(await answers('TCP to the IPv6 NodePort', 2, () => httpGet(topo, topo.client, topo.nodeIP6!, PORTS.nodeHttp)), ['pod-2', 'pod-2']);
    t.deepEqual(await answers('UDP to the IPv4 NodePort', 2, () => udpAsk(topo, topo.client, topo.nodeIP, PORTS.nodeDns)), ['pod-1', 'pod-1']);
    t.deepEqual(await answers('UDP to the IPv6 NodePort', 2, () => udpAsk(topo, topo.client, topo.nodeIP6!, PORTS.nodeDns)), ['pod-2', 'pod-2']);

    // 3. No endpoints: refused at once, not accepted then closed, not silently dropped.
    const refusals: Array<[string, () => Promise<true>]> = [
      ['TCP from a pod to the ClusterIP', () => tcpRefused(topo, client.ns, empty, PORTS.http)],
      ['UDP from a pod to the ClusterIP', () => udpRefused(topo, client.ns, empty, PORTS.dns)],
      ['TCP from the client node to the IPv4 NodePort', () => tcpRefused(topo, topo.client, topo.nodeIP, PORTS.emptyNodeHttp)],
      ['UDP from the client node to the IPv4 NodePort', () => udpRefused(topo, topo.client, topo.nodeIP, PORTS.emptyNodeDns)],
      ['TCP from the client node to the IPv6 NodePort', () => tcpRefused(topo, topo.client, topo.nodeIP6!, PORTS.emptyNodeHttp)],
      ['UDP from the client node to the IPv6 NodePort', () => udpRefused(topo, topo.client, topo.nodeIP6!, PORTS.emptyNodeDns)],
      ['TCP from the node to the ClusterIP', () => tcpRefused(topo, topo.node, empty, PORTS.http)],
    ];
    const refuseAll = async (when: string): Promise<void> => {
      for (const [what, probe] of refusals) await attempt(t, `${when}: ${what} refused`, () => waitFor(`${what} refused`, probe, SYNC_DEADLINE_MS, 200));
    };
    await refuseAll('before any endpoint');

    // 4. Endpoints appear: the port serves, on every path, within one sync.
    await write('empty-slice.yaml', slice('empty', 'empty-v4', 'IPv4', [topo.pods[0]!.ip]));
    const serving: Array<[string, () => Promise<string>]> = [
      ['TCP from a pod to the ClusterIP', () => httpGet(topo, client.ns, empty, PORTS.http, 2)],
      ['UDP from a pod to the ClusterIP', () => udpAsk(topo, client.ns, empty, PORTS.dns)],
      ['TCP from the client node to the IPv4 NodePort', () => httpGet(topo, topo.client, topo.nodeIP, PORTS.emptyNodeHttp, 2)],
      ['UDP from the client node to the IPv4 NodePort', () => udpAsk(topo, topo.client, topo.nodeIP, PORTS.emptyNodeDns)],
      ['TCP from the client node to the IPv6 NodePort', () => httpGet(topo, topo.client, topo.nodeIP6!, PORTS.emptyNodeHttp, 2)],
      ['UDP from the client node to the IPv6 NodePort', () => udpAsk(topo, topo.client, topo.nodeIP6!, PORTS.emptyNodeDns)],
      ['TCP from the node to the ClusterIP', () => httpGet(topo, topo.node, empty, PORTS.http, 2)],
    ];
    for (const [what, probe] of serving) {
      const a = await attempt(t, `after the endpoint appeared: ${what}`, () => waitFor(what, probe, SYNC_DEADLINE_MS, 200));
      if (a !== undefined) t.is(a, 'pod-1', `${what}: answered by the new endpoint`);
    }

    // 5. And the last endpoint going makes it refuse again.
    await remove('empty-slice.yaml');
    await refuseAll('after the endpoint went');
    t.false(agent.hasExited(), 'the agent is still running');
    t.log(`${mode.title}: ${Date.now() - started} ms`);
  });
}
