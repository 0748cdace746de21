/**
 * The health check node port as a client on another node sees it, as a cloud load balancer's
 * health checker does: the agent CLI runs in a node namespace as node `node-1`, pods behind it,
 * and the client node curls nodeIP:healthCheckNodePort. See spec/helpers/netns.ts for the
 * topology and spec/helpers/redirect-scenario.ts for the pods.
 *
 * These tests need root and `ip netns`. Elsewhere they are skipped with a message, except when
 * CI=true: there they must run.
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { sliceYaml } from '../helpers/agent-fixture.js';
import { projectText } from '../helpers/kernel-state.js';
import { netnsSupport, netnsTestIf } from '../helpers/netns.js';
import type { Topology } from '../helpers/netns.js';
import { httpGet } from '../helpers/netns-probes.js';
import { START_TIMEOUT_MS } from '../helpers/process.js';
import { PORTS, createScenario } from '../helpers/redirect-scenario.js';
import type { Scenario } from '../helpers/redirect-scenario.js';
import { waitFor } from '../helpers/wait-for.js';

const TOOLS = ['iptables', 'iptables-save', 'nft', 'curl'];
const support = await netnsSupport(TOOLS);
const nsTest = netnsTestIf(support, 'health check node port tests');

const NODE = 'node-1';
const HEALTH_CHECK_PORT = 32100;
/** A manifest change reaches the agent within one sync; generous for loaded CI machines. */
const DEADLINE_MS = 10_000;

interface Mode {
  readonly title: string;
  readonly flags: readonly string[];
  readonly block: number;
}

const MODES: readonly Mode[] = [
  { title: 'iptables', flags: ['--redirect', 'iptables'], block: 231 },
  { title: 'nftables', flags: ['--redirect', 'nftables'], block: 232 },
  { title: 'none', flags: ['--redirect', 'none'], block: 233 },
];

interface CheckAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: { service: { namespace: string; name: string }; localEndpoints: number; serviceProxyHealthy: boolean };
}

/** curl http://ip:port/ from `ns`: the status, Content-Type and parsed JSON body. */
async function curlCheck(topo: Topology, ns: string, ip: string, port: number): Promise<CheckAnswer> {
  const r = await topo.exec(ns, ['curl', '-sS', '--max-time', '3', '-w', '\n%{http_code} %{content_type}', `http://${ip}:${port}/`], { timeoutMs: 5000 });
  if (r.code !== 0) throw new Error(`curl ${ip}:${port} from ${ns}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  const cut = r.stdout.lastIndexOf('\n');
  const [status, contentType] = r.stdout.slice(cut + 1).split(' ');
  return { status: Number(status), contentType: contentType ?? '', body: JSON.parse(r.stdout.slice(0, cut)) as CheckAnswer['body'] };
}

function precondition(t: ExecutionContext): boolean {
  if (support.ok) return true;
  t.fail(`CI=true but the health check node port tests cannot run: ${support.reason}`);
  return false;
}

async function writeManifest(s: Scenario, name: string, text: string): Promise<void> {
  const tmp = path.join(s.dir, `.${name}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, path.join(s.dir, name));
}

/**
 * `default/web` as a LoadBalancer with externalTrafficPolicy Local and a health check node port.
 * The load balancer is the client node itself, so no ingress IP: in plain none mode an ingress IP
 * the node does not have would fall back to --bind-address, beside the ClusterIP's listener.
 */
function localService(s: Scenario): string {
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    '  name: web',
    '  namespace: default',
    'spec:',
    '  type: LoadBalancer',
    `  clusterIP: "${s.ips.cluster}"`,
    '  externalTrafficPolicy: Local',
    `  healthCheckNodePort: ${HEALTH_CHECK_PORT}`,
    '  ports:',
    `    - { name: http, protocol: TCP, port: ${PORTS.http}, targetPort: ${PORTS.podHttp}, nodePort: ${PORTS.nodeHttp} }`,
    '',
  ].join('\n');
}

/** The pods, each on the node named by `nodes` (pod-1 first). */
function placedSlice(s: Scenario, nodes: readonly string[]): string {
  return sliceYaml(
    'web',
    'web-pods',
    [{ name: 'http', port: PORTS.podHttp }],
    s.topo.pods.map((p, i) => ({ ip: p.ip, nodeName: nodes[i] ?? 'node-2' })),
  );
}

/** Polls from the client node until the check answers `status` with `localEndpoints`. */
function clientSees(s: Scenario, status: number, localEndpoints: number, deadlineMs = DEADLINE_MS, ip = s.topo.nodeIP): Promise<CheckAnswer> {
  return waitFor(
    `the client node seeing ${status} with ${localEndpoints} local endpoints on ${ip}:${HEALTH_CHECK_PORT}`,
    async () => {
      const a = await curlCheck(s.topo, s.topo.client, ip, HEALTH_CHECK_PORT);
      return a.status === status && a.body.localEndpoints === localEndpoints ? a : undefined;
    },
    deadlineMs,
    200,
  );
}

for (const mode of MODES) {
  nsTest(`${mode.title}: a client on another node gets 200 while this node has a ready pod of the service, 503 when it has none`, async (t) => {
    if (!precondition(t)) return;
    const s = await createScenario(t, mode.block);
    const { topo } = s;
    await writeManifest(s, 'service.yaml', localService(s));
    await writeManifest(s, 'endpointslice.yaml', placedSlice(s, [NODE, 'node-2', 'node-2']));
    const agent = s.startAgent([...mode.flags, '--hostname-override', NODE]);
    // Plain none mode serves no ClusterIP here (it is on no interface), so wait on the check itself.
    const one = await clientSees(s, 200, 1, START_TIMEOUT_MS);
    t.is(one.contentType, 'application/json');
    t.deepEqual(one.body, { service: { namespace: 'default', name: 'web' }, localEndpoints: 1, serviceProxyHealthy: true });
    // What the check promises: external traffic arriving at this node reaches the local pod.
    t.is(await waitFor('the NodePort answering', () => httpGet(topo, topo.client, topo.nodeIP, PORTS.nodeHttp), DEADLINE_MS, 200), 'pod-1');

    await writeManifest(s, 'endpointslice.yaml', placedSlice(s, ['node-2', 'node-2', 'node-2']));
    const none = await clientSees(s, 503, 0);
    t.deepEqual(none.body, { service: { namespace: 'default', name: 'web' }, localEndpoints: 0, serviceProxyHealthy: true });

    await writeManifest(s, 'endpointslice.yaml', placedSlice(s, [NODE, NODE, 'node-2']));
    await clientSees(s, 200, 2);

    if (mode.title !== 'none') {
      const rules = projectText(await s.state());
      t.false(rules.includes(String(HEALTH_CHECK_PORT)), `no rule for the health check port: it is a plain listener\n${rules}`);
    }
    t.false(agent.hasExited(), agent.tail());
  });
}

nsTest('iptables with --nodeport-addresses: the check listens on the node IPs inside those CIDRs only', async (t) => {
  if (!precondition(t)) return;
  const s = await createScenario(t, 234);
  const { topo } = s;
  await writeManifest(s, 'service.yaml', localService(s));
  await writeManifest(s, 'endpointslice.yaml', placedSlice(s, [NODE, 'node-2', 'node-2']));
  const agent = s.startAgent(['--redirect', 'iptables', '--hostname-override', NODE, '--nodeport-addresses', `${topo.nodeIP}/32`]);
  await clientSees(s, 200, 1, START_TIMEOUT_MS);
  // The node's address on pod-1's link is outside the CIDR: nothing listens there.
  const pod = topo.pods[0]!;
  const refused = await topo.exec(pod.ns, ['curl', '-sS', '--max-time', '3', `http://${pod.gateway}:${HEALTH_CHECK_PORT}/`], { timeoutMs: 5000 });
  t.not(refused.code, 0, `nothing answers on ${pod.gateway}:${HEALTH_CHECK_PORT}: ${refused.stdout}`);
  t.is(refused.code, 7, `curl: connection refused, not a timeout: ${refused.stderr}`);
  t.false(agent.hasExited(), agent.tail());
});
