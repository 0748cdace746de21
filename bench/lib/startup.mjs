// Scenario "startup": start-up and sync cost with many service ports (default 10,000).
//
// Each service has its own loopback ClusterIP (127.100.1.1 … 127.100.40.250) and one port, so
// nothing conflicts. The proxy reads them from manifests (10 YAML files of 1,000 Services +
// EndpointSlices), HAProxy from 10,000 `listen` sections, nginx from 10,000 stream servers, the
// legacy stand-in from 10,000 arguments. Measured per start:
//   ready_ms    spawn → every one of the ports is listening (the kernel accepts on it), polled
//               every 20 ms with a kernel-filtered socket census (ss);
//   cpu_ms      CPU the target used until then (user + system, whole process group);
//   rss_mib     its RSS then;
//   add_one_ms  (proxy only) one more service written into the manifest directory → its port
//               accepts: the cost of one incremental sync with 10,000 services in place;
//   stop_ms     SIGTERM → exited.
// After ready_ms, every port is connected to and one byte is echoed through it (untimed): the
// listeners must really proxy, not just exist.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { countListening, sweep, tryConnect } from './net-util.mjs';
import { groupCpu, groupRss, log, stop } from './procs.mjs';
import { prepareTarget, serviceManifest, spawnTarget, startupServices } from './targets.mjs';

const READY_LIMIT_MS = 60_000;

export function prepareStartup(ctx, targets, count) {
  const services = startupServices(ctx.layout, count);
  const prepared = {};
  for (const t of targets) prepared[t] = prepareTarget(ctx, t, 'startup', services);
  return { services, prepared };
}

async function waitNoListeners(ctx) {
  const L = ctx.layout;
  for (let i = 0; i < 150; i++) {
    if (countListening(L.startupPrefix, L.startupPort) === 0) return true;
    await sleep(100);
  }
  return false;
}

export async function startupOnce(ctx, target, { services, prepared }) {
  const L = ctx.layout;
  const count = services.length;
  if (!(await waitNoListeners(ctx))) return { ok: false, error: 'ports of an earlier start-up run are still listening' };
  const t0 = performance.now();
  const proc = spawnTarget(ctx, target, 'startup', prepared[target]);
  let n = 0;
  let readyMs = NaN;
  while (performance.now() - t0 < READY_LIMIT_MS && !proc.done) {
    n = countListening(L.startupPrefix, L.startupPort);
    if (n >= count) {
      readyMs = performance.now() - t0;
      break;
    }
    await sleep(20);
  }
  const cpu = proc.done ? null : groupCpu(proc.pid);
  const rss = proc.done ? NaN : groupRss(proc.pid);
  if (!Number.isFinite(readyMs)) {
    await stop(proc, 5000);
    return { ok: false, error: `${n} of ${count} ports listening after ${READY_LIMIT_MS / 1000} s${proc.done ? ' (it exited)' : ''}; see ${proc.logPath}` };
  }
  const check = await sweep(
    services.map((s) => ({ host: s.ip, port: s.port })),
    { echo: true, concurrency: 200, timeoutMs: 5000 },
  );
  let addOneMs = NaN;
  let extraFile;
  if (target.startsWith('proxy')) {
    extraFile = path.join(prepared[target].manifests, 'extra.yaml');
    const extra = { name: 'svc-extra', proto: 'TCP', ip: L.extraIp, port: L.startupPort, endpoints: [{ ip: '127.0.0.1', port: L.holdBackends[0] }] };
    const t1 = performance.now();
    fs.writeFileSync(extraFile, `${serviceManifest(extra)}\n`);
    while (performance.now() - t1 < 15_000) {
      if (await tryConnect(L.extraIp, L.startupPort, 500)) {
        addOneMs = performance.now() - t1;
        break;
      }
      // A refused connect on loopback returns at once: polling every millisecond keeps the
      // figure's resolution well under the 20 ms goal (10 ms added up to 10 ms to it).
      await sleep(1);
    }
  }
  const t2 = performance.now();
  await stop(proc, 15_000);
  const stopMs = performance.now() - t2;
  if (extraFile) fs.rmSync(extraFile, { force: true });
  const metrics = {
    ready_ms: readyMs,
    cpu_ms: cpu ? (cpu.usr + cpu.sys) * 1000 : NaN,
    rss_mib: rss / 2 ** 20,
  };
  if (target.startsWith('proxy')) metrics.add_one_ms = addOneMs;
  const detail = { accepted: check.accepted, echoed: check.echoed, failed: check.failed, sampleErrors: check.sampleErrors, stopMs };
  if (check.echoed < count) log(`startup ${target}: only ${check.echoed} of ${count} ports proxied a byte (${check.sampleErrors.join('; ')})`);
  return { ok: true, metrics, detail };
}
