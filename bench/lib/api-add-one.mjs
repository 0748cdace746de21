// Scenario "apiadd": one more service in API mode, with many (default 10,000) already in place.
//
// The proxy (the real CLI, `--kubeconfig`, alone or with --workers) follows the project's test API
// server (dist/spec/helpers/test-api-server.js: the real list/watch wire protocol that
// @kubernetes/client-node speaks), in this process. N Services of one TCP port each, on their own
// loopback ClusterIPs 127.104.a.b, each with an EndpointSlice of one endpoint. The endpoint is
// 192.0.2.10 (TEST-NET-1): the proxy refuses loopback endpoints from the API, and a port listens
// as soon as it has an endpoint, whether or not that endpoint answers. Measured per start:
//   api_ready_ms    spawn → every port listening (kernel socket census, polled every 50 ms);
//   api_add_one_ms  a Service and its EndpointSlice created back to back, as the EndpointSlice
//                   controller follows a new Service → its port accepts a connection (polled
//                   every 2 ms); the median of ADDS additions, each after a quiet period: QUIET_MS,
//                   long enough for the sync rate limit (kube-proxy's token bucket: 2 syncs, one
//                   more per --min-sync-period, 1 s by default) to be full again, as it is for a
//                   change in a cluster where nothing else changed for a while. The Service and its
//                   slice may cost two syncs (one to apply the Service, one to open its port once it
//                   has an endpoint): with less quiet before, the second waits for its token.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { countListening, tryConnect } from './net-util.mjs';
import { log, spawnManaged, stop } from './procs.mjs';
import { median } from './report.mjs';
import { proxyWorkers } from './targets.mjs';

const READY_LIMIT_MS = 120_000;
const ADD_LIMIT_MS = 15_000;
const ADDS = 5;
const QUIET_MS = 2500;
const PREFIX = '127.104';
const ENDPOINT = '192.0.2.10';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function ipOf(i) {
  return `${PREFIX}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

function service(name, ip, port) {
  return {
    metadata: { namespace: 'bench', name },
    spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'p', port, protocol: 'TCP', targetPort: 9 }], sessionAffinity: 'None' },
    status: { loadBalancer: {} },
  };
}

function slice(name) {
  return {
    metadata: { namespace: 'bench', name: `${name}-0`, labels: { 'kubernetes.io/service-name': name } },
    addressType: 'IPv4',
    endpoints: [{ addresses: [ENDPOINT], conditions: { ready: true } }],
    ports: [{ name: 'p', port: 9, protocol: 'TCP' }],
  };
}

async function waitNoListeners(port) {
  for (let i = 0; i < 150; i++) {
    if (countListening(PREFIX, port) === 0) return true;
    await sleep(100);
  }
  return false;
}

/** One start of TARGET (proxy or proxy-workers) against a fresh API server holding COUNT services. */
export async function apiAddOneOnce(ctx, target, count) {
  const port = ctx.layout.startupPort;
  // Loaded from this checkout's build, also when --proxy-root measures another one.
  const { TestApiServer } = await import(pathToFileURL(path.join(REPO, 'dist/spec/helpers/test-api-server.js')).href);
  if (!(await waitNoListeners(port))) return { ok: false, error: 'ports of an earlier run are still listening' };
  const api = await TestApiServer.start();
  const dir = path.join(ctx.tmp, `${target}-apiadd`);
  fs.mkdirSync(dir, { recursive: true });
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, api.kubeconfig());
  for (let i = 0; i < count; i++) {
    api.create('services', service(`svc-${i}`, ipOf(i), port));
    api.create('endpointslices', slice(`svc-${i}`));
  }
  const workers = target === 'proxy' ? [] : ['--workers', String(proxyWorkers(ctx, 'startup'))];
  const args = [...ctx.proxyNodeArgs, ctx.proxyCli, '--kubeconfig', kubeconfig, '--log-level', 'warn', '--bind-address', '127.0.0.1', '--healthz-bind-address=', '--metrics-bind-address=', ...workers];
  const t0 = performance.now();
  const proc = spawnManaged(`${target}-apiadd`, process.execPath, args, { nofile: ctx.fdHard, cwd: dir });
  try {
    let readyMs = NaN;
    let n = 0;
    while (performance.now() - t0 < READY_LIMIT_MS && !proc.done) {
      n = countListening(PREFIX, port);
      if (n >= count) {
        readyMs = performance.now() - t0;
        break;
      }
      await sleep(50);
    }
    if (!Number.isFinite(readyMs)) return { ok: false, error: `${n} of ${count} ports listening after ${READY_LIMIT_MS / 1000} s${proc.done ? ' (it exited)' : ''}; see ${proc.logPath}` };
    const adds = [];
    for (let k = 0; k < ADDS; k++) {
      await sleep(QUIET_MS);
      const name = `extra-${k}`;
      const ip = ipOf(count + k);
      const t1 = performance.now();
      api.create('services', service(name, ip, port));
      api.create('endpointslices', slice(name));
      let ms = NaN;
      while (performance.now() - t1 < ADD_LIMIT_MS && !proc.done) {
        if (await tryConnect(ip, port, 500)) {
          ms = performance.now() - t1;
          break;
        }
        await sleep(2);
      }
      if (!Number.isFinite(ms)) return { ok: false, error: `${name} was not listening ${ADD_LIMIT_MS / 1000} s after it was created; see ${proc.logPath}` };
      adds.push(ms);
    }
    log(`  apiadd ${target}: one more service → listening in ${adds.map((x) => x.toFixed(0)).join(', ')} ms`);
    return { ok: true, metrics: { api_ready_ms: readyMs, api_add_one_ms: median(adds) }, detail: { addsMs: adds } };
  } finally {
    await stop(proc, 15_000);
    await api.close();
  }
}
