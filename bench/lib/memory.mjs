// Scenario "memory": a fresh instance of each target holds idle proxied connections.
//
// 1. RSS per idle proxied connection: the instance's RSS (whole process group) is sampled after
//    it has started and settled, then again once CHECKPOINT connections are held end to end and
//    idle for 2 s; the difference divided by CHECKPOINT.
// 2. The most concurrent connections held before any is refused: connections keep being opened
//    (tcp-hold, INFLIGHT at a time) until the first one fails (refused, reset, closed, or no echo
//    within 5 s), up to --max-conns and within --hold-time seconds; then every held connection is
//    probed once more and the ones still alive are counted.
//
// One tcp-hold process holds at most the per-process descriptor limit, so several are started one
// after the other (the next only when the previous reached its share without a failure); the
// TCP echo backend is one process per endpoint port for the same reason. "direct" runs the same
// clients against the backend itself: it shows what the harness and the machine can hold.
import { setTimeout as sleep } from 'node:timers/promises';
import { groupCpu, groupRss, spawnManaged, stop } from './procs.mjs';
import { memServices, startTarget } from './targets.mjs';

const SOURCES = ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4'];
const SETTLE_MS = 2000;

/** JSON lines from a managed process's stdout, one at a time. */
function events(proc) {
  const queue = [];
  let wake = null;
  let buf = '';
  proc.child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        queue.push(JSON.parse(line));
      } catch {
        // not an event
      }
    }
    if (wake && queue.length) wake();
  });
  proc.exited.then(() => wake?.());
  return {
    async next(timeoutMs) {
      const until = Date.now() + timeoutMs;
      while (!queue.length) {
        if (proc.done || Date.now() >= until) return null;
        await Promise.race([new Promise((r) => (wake = r)), sleep(Math.max(1, until - Date.now()))]);
        wake = null;
      }
      return queue.shift();
    },
  };
}

/** The checkpoint actually used: --idle-conns, lowered when a proxy could not hold that many here. */
export function memoryCheckpoint(idleConns, fdHard) {
  // A proxy spends two descriptors per connection; keep some for its listeners and itself.
  const fits = Math.floor((fdHard - 512) / 2 / 500) * 500;
  return Math.min(idleConns, fits);
}

export async function memoryOnce(ctx, target, { checkpoint, maxConns, holdTimeS }) {
  const L = ctx.layout;
  let inst = null;
  let fronts;
  if (target === 'direct') {
    fronts = L.holdBackends.map((p) => `127.0.0.1:${p}`);
  } else {
    inst = await startTarget(ctx, target, 'mem', memServices(L, target));
    if (!inst.ok) {
      await stop(inst.proc);
      return { ok: false, error: `${target} did not start (memory instance); see ${inst.proc.logPath}` };
    }
    fronts = [`127.0.0.1:${L.memFront(target)}`];
  }
  const pgid = inst?.proc.pid;
  await sleep(1000);
  const rssBase = pgid ? groupRss(pgid) : NaN;
  const cpu0 = pgid ? groupCpu(pgid) : null;
  const perClient = Math.max(1000, ctx.fdHard - 500);
  const deadline = Date.now() + holdTimeS * 1000;
  const clients = [];
  let heldTotal = 0;
  let stopReason = '';
  let rssCheckpoint = NaN;
  let heldAtCheckpoint = 0;
  let rampMs = 0;
  try {
    for (let k = 0; ; k++) {
      const share = Math.min(perClient, maxConns - heldTotal);
      const remainingS = (deadline - Date.now()) / 1000;
      if (share <= 0) {
        stopReason = `cap of ${maxConns} reached`;
        break;
      }
      if (remainingS < 1) {
        stopReason = `time limit of ${holdTimeS} s reached`;
        break;
      }
      const args = [...fronts.flatMap((f) => ['-t', f]), ...SOURCES.flatMap((s) => ['-s', s])];
      args.push('-n', String(share), '-p', '256', '-w', '5000', '-T', remainingS.toFixed(1));
      if (k === 0 && checkpoint > 0) args.push('-c', String(checkpoint));
      const proc = spawnManaged(`hold-${target}-${k}`, ctx.bin['tcp-hold'], args, { capture: true, stdin: 'pipe' });
      proc.child.stdin.on('error', () => {});
      const ev = events(proc);
      clients.push({ proc, ev });
      const waitMs = remainingS * 1000 + 30_000;
      let e = await ev.next(waitMs);
      if (e?.event === 'checkpoint') {
        await sleep(SETTLE_MS);
        if (pgid) rssCheckpoint = groupRss(pgid);
        heldAtCheckpoint = e.held;
        proc.child.stdin.write('\n');
        e = await ev.next(waitMs);
      }
      if (e?.event !== 'result') {
        stopReason = `connection client ${k} gave no result (see ${proc.logPath})`;
        break;
      }
      heldTotal += e.held;
      rampMs += e.ms;
      await ev.next(60_000); // its first "verified"
      if (!e.stop.startsWith('cap of')) {
        stopReason = e.stop;
        break;
      }
    }
    // Every client probes all of its connections once more: those still alive now are "held".
    let alive = 0;
    let dropped = 0;
    for (const c of clients) {
      if (c.proc.done) continue;
      c.proc.child.stdin.write('probe\n');
      const v = await c.ev.next(120_000);
      if (v?.event === 'verified') {
        alive += v.alive;
        dropped += v.dropped;
      }
    }
    await sleep(SETTLE_MS);
    const rssMax = pgid ? groupRss(pgid) : NaN;
    const cpu1 = pgid ? groupCpu(pgid) : null;
    // Short of the checkpoint (a target that runs out of something first), the figure is taken
    // over the connections it did hold.
    const atCheckpoint = heldAtCheckpoint > 0;
    const metrics = {
      max_held: alive,
      bytes_per_conn: atCheckpoint ? (rssCheckpoint - rssBase) / heldAtCheckpoint : alive > 0 ? (rssMax - rssBase) / alive : NaN,
    };
    const detail = {
      checkpoint: heldAtCheckpoint,
      bytesPerConnAt: atCheckpoint ? heldAtCheckpoint : alive,
      bytesPerConnAtCheckpoint: atCheckpoint,
      rssBaseMiB: rssBase / 2 ** 20,
      rssCheckpointMiB: rssCheckpoint / 2 ** 20,
      rssMaxMiB: rssMax / 2 ** 20,
      bytesPerConnAtMax: alive > 0 ? (rssMax - rssBase) / alive : NaN,
      opened: heldTotal,
      droppedWhileIdle: dropped,
      stop: stopReason,
      rampMs,
      clients: clients.length,
      cpuS: cpu0 ? cpu1.usr + cpu1.sys - cpu0.usr - cpu0.sys : NaN,
    };
    return { ok: true, metrics, detail };
  } finally {
    for (const c of clients) {
      if (!c.proc.done) c.proc.child.stdin.end('close\n');
    }
    await Promise.all(clients.map((c) => Promise.race([c.proc.exited, sleep(20_000)])));
    for (const c of clients) await stop(c.proc, 1000);
    if (inst) await stop(inst.proc, 5000);
    // Let the kernel finish tearing down this round's sockets before the next instance.
    await sleep(1000);
  }
}

export function describeMemory(target, r) {
  if (!r.ok) return `${target}: ${r.error}`;
  const m = r.metrics;
  const d = r.detail;
  const held = `held ${m.max_held.toLocaleString('en-US')} (${d.stop})`;
  if (target === 'direct') return `${target}: ${held} (no proxy: the harness's own reach)`;
  const per = Number.isFinite(m.bytes_per_conn)
    ? `${(m.bytes_per_conn / 1024).toFixed(1)} KiB per connection at ${d.bytesPerConnAt.toLocaleString('en-US')}${d.bytesPerConnAtCheckpoint ? '' : ' (all it held: checkpoint not reached)'}`
    : 'no connection held';
  const mib = (x) => (Number.isFinite(x) ? x.toFixed(0) : '–');
  return `${target}: ${per}; ${held}; RSS ${mib(d.rssBaseMiB)} → ${mib(d.rssCheckpointMiB)} → ${mib(d.rssMaxMiB)} MiB (start → checkpoint → max)`;
}
