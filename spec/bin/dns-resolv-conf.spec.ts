import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { CLI } from '../helpers/process.js';

const run = promisify(execFile);

/**
 * The README's plain-resolv.conf route, as a user's programs see it: in a network and mount
 * namespace of its own (nothing on the host changes), /etc/resolv.conf points at the agent on
 * 127.0.0.1:53 with the cluster's search list, and glibc's getent resolves service names, short
 * ones too. Needs root and unshare; skipped elsewhere, except with CI=true, where it must run.
 */
async function support(): Promise<{ ok: boolean; reason: string }> {
  try {
    await run('unshare', ['-n', '-m', 'true']);
    await run('dig', ['-v']);
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: `needs root, unshare and dig: ${(err as Error).message.split('\n')[0]}` };
  }
}
const supported = await support();
const mustRun = process.env['CI'] === 'true';
const nsTest = supported.ok || mustRun ? test : test.skip;
if (!supported.ok) {
  if (mustRun) test('unshare and dig work (CI=true)', (t) => t.fail(`CI=true but the resolv.conf test cannot run: ${supported.reason}`));
  else console.warn(`skipping the resolv.conf test: ${supported.reason} (with CI=true it runs, and fails)`);
}

const SCRIPT = `
set -u
ip link set lo up
mount --bind "$RESOLV" /etc/resolv.conf
"$NODE" "$CLI" --manifests "$DIR/svc.yaml" --dns-bind-address 127.0.0.1:53 --dns-upstream refuse --healthz-bind-address= --metrics-bind-address= --log-level warn &
P=$!
trap 'kill $P 2>/dev/null' EXIT
# Poll (with a deadline) until the agent answers.
i=0
until dig +short +tries=1 +time=1 @127.0.0.1 orders.shop.svc.cluster.local 2>/dev/null | grep -q '^127[.]'; do
  i=$((i + 1)); [ $i -gt 150 ] && { echo "agent did not answer"; exit 3; }
  sleep 0.2
done
for n in orders.shop.svc.cluster.local orders.shop orders db-0.db.shop.svc.cluster.local; do echo "== $n"; timeout 5 getent hosts $n; done
`;

nsTest('with /etc/resolv.conf pointing at the agent, getent resolves service names, short ones through the search list', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-resolv-route-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\nsearch shop.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n');
  await writeFile(
    path.join(dir, 'svc.yaml'),
    `
apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  clusterIP: 127.0.10.1
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {clusterIP: None}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-a, namespace: shop, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
endpoints: [{addresses: ["127.0.20.1"], hostname: db-0}]
`,
  );
  const { stdout } = await run('unshare', ['-n', '-m', 'sh', '-c', SCRIPT], {
    env: { ...process.env, NODE: process.execPath, CLI, DIR: dir, RESOLV: path.join(dir, 'resolv.conf') },
    timeout: 60_000,
  });
  const lines = stdout.split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
  t.deepEqual(
    lines.filter((l) => l !== ''),
    [
      '== orders.shop.svc.cluster.local',
      '127.0.10.1 orders.shop.svc.cluster.local',
      '== orders.shop',
      '127.0.10.1 orders.shop.svc.cluster.local',
      '== orders',
      '127.0.10.1 orders.shop.svc.cluster.local',
      '== db-0.db.shop.svc.cluster.local',
      '127.0.20.1 db-0.db.shop.svc.cluster.local',
    ],
  );
});
