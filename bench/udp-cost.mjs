#!/usr/bin/env node
// `node bench/udp-cost.mjs`: what one UDP round trip costs each proxy, in figures that a busy
// machine distorts little: CPU time of the proxy's processes per round trip (utime + stime from
// /proc, before and after a bounded udp-rr load) and system calls per round trip (strace -c -f
// attached to every process of the proxy during a second bounded load). See bench/README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { buildCTools, buildLegacy, busyPorts, detectTools, which } from './lib/prereqs.mjs';
import { fdLimits, groupCpu, log, runBounded, setLogDir, spawnManaged, stop, stopAll } from './lib/procs.mjs';
import { startBackends, startTarget } from './lib/targets.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, '..');
const TARGETS = ['direct', 'proxy', 'proxy-workers', 'proxy-js', 'proxy-workers-js', 'nginx', 'legacy'];
/** The same build with the native UDP data path turned off (KUP_UDP_NATIVE=0): before/after without a second checkout. */
const JS_PATH_SUFFIX = '-js';

const USAGE = `usage: node bench/udp-cost.mjs [options]      (after npm run build; needs gcc, strace; nginx, go optional)

Per target and round: a bounded udp-rr load (4 flows x 16 in flight, 64 B) with CPU time read
from /proc before and after; a second one with perf stat counting system calls; a third under
strace -c -f for the breakdown by call. Prints round trips/s, CPU µs per round trip (user /
system) and system calls per round trip.

  --targets a,b       of ${TARGETS.join(',')} (default: all); the -js ones are the
                      proxy with its native UDP data path off (KUP_UDP_NATIVE=0)
  --baseline DIR      also measure DIR's dist/ (a checkout, or a copy of dist/ beside node_modules)
                      as "proxy@NAME" and "proxy-workers@NAME", NAME being DIR's last part, in the
                      same run, for before/after figures; may be given more than once
  --duration S        seconds per load (default 3)
  --reps N            rounds, targets rotated each round (default 2)
  --no-strace         CPU figures and perf's system call count only (no per-call breakdown)
  --port-base P       first port (default 29500; the UDP echo backend is P+301, fronts P+1000+10i)
  --legacy-go PATH    the legacy stand-in's main.go (default ../shared/bench/legacy-go/main.go)
  --out FILE          also write every figure as JSON to FILE
  --help`;

function parseArgs(argv) {
  const o = { targets: [...TARGETS], baselines: [], duration: 3, reps: 2, strace: true, portBase: 29_500, out: null, legacyGo: path.resolve(REPO, '..', 'shared', 'bench', 'legacy-go', 'main.go') };
  const problems = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    if (a === '--targets') {
      o.targets = String(next() ?? '')
        .split(',')
        .filter(Boolean);
      for (const t of o.targets) if (!TARGETS.includes(t)) problems.push(`--targets: unknown "${t}" (known: ${TARGETS.join(', ')})`);
    } else if (a === '--baseline') o.baselines.push(path.resolve(String(next())));
    else if (a === '--duration') o.duration = Number(next());
    else if (a === '--reps') o.reps = Number(next());
    else if (a === '--no-strace') o.strace = false;
    else if (a === '--port-base') o.portBase = Number(next());
    else if (a === '--legacy-go') o.legacyGo = path.resolve(String(next()));
    else if (a === '--out') o.out = path.resolve(String(next()));
    else if (a === '--help' || a === '-h') o.help = true;
    else problems.push(`unknown argument ${a}`);
  }
  if (!(o.duration >= 1 && o.duration <= 60)) problems.push('--duration must be 1 to 60 seconds');
  if (!(Number.isInteger(o.reps) && o.reps >= 1 && o.reps <= 20)) problems.push('--reps must be an integer from 1 to 20');
  if (!(Number.isInteger(o.portBase) && o.portBase >= 1024 && o.portBase <= 60_000)) problems.push('--port-base must be a port from 1024 to 60000');
  for (const b of o.baselines) if (!fs.existsSync(path.join(b, 'dist', 'bin', 'kube-userspace-proxy.js'))) problems.push(`--baseline: ${b}/dist/bin/kube-userspace-proxy.js does not exist`);
  return { o, problems };
}

/** Process ids of the process group PGID. */
function groupPids(pgid) {
  const pids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid) pids.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

async function udpLoad(bin, port, seconds) {
  const r = await runBounded('load-udp-rr', bin, ['127.0.0.1', String(port), '4', '16', String(seconds), '64', '0'], { timeoutMs: (seconds + 15) * 1000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return null;
  }
}

/** strace -c's summary table: {total, calls: {name: count}}. */
export function parseStraceSummary(text) {
  const calls = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // % time, seconds, usecs/call, calls, [errors], syscall
    if (f.length < 5 || !/^\d+\.\d+$/.test(f[0])) continue;
    const name = f[f.length - 1];
    const count = Number(f[3]);
    if (name === 'total') total = count;
    else calls[name] = count;
  }
  return { total, calls };
}

/** System calls the group PGID makes during a load, counted by perf on the raw_syscalls tracepoint (no per-call stop, unlike strace). */
async function perfCounted(ctx, pgid, port, seconds) {
  const file = path.join(ctx.tmp, `perf-${pgid}.txt`);
  const pids = groupPids(pgid).join(',');
  const counter = spawnManaged('perf', 'perf', ['stat', '-e', 'raw_syscalls:sys_enter', '-x', ',', '-o', file, '-p', pids, '--', 'sleep', String(seconds + 0.5)]);
  // perf attaches in well under a second and has no readiness signal of its own.
  await sleep(300);
  const rr = await udpLoad(ctx.bin['udp-rr'], port, seconds);
  await Promise.race([counter.exited, sleep(5000)]);
  await stop(counter);
  const line = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .find((l) => l.includes('raw_syscalls:sys_enter'))
    : undefined;
  const count = line ? Number(line.split(',')[0]) : NaN;
  return rr && rr.received > 0 && Number.isFinite(count) ? count / rr.received : NaN;
}

async function straced(ctx, pgid, port, seconds) {
  const pids = groupPids(pgid);
  const file = path.join(ctx.tmp, `strace-${pgid}.txt`);
  const tracer = spawnManaged('strace', 'strace', ['-c', '-f', '-q', '-o', file, ...pids.flatMap((p) => ['-p', String(p)])]);
  // strace attaches in well under a second and has no readiness signal of its own.
  await sleep(700);
  const rr = await udpLoad(ctx.bin['udp-rr'], port, seconds);
  tracer.child.kill('SIGINT');
  await Promise.race([tracer.exited, sleep(5000)]);
  await stop(tracer);
  const summary = fs.existsSync(file) ? parseStraceSummary(fs.readFileSync(file, 'utf8')) : { total: 0, calls: {} };
  return { rr, summary, processes: pids.length };
}

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rotate = (list, k) => list.slice(k % list.length).concat(list.slice(0, k % list.length));
const fmt = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');

async function main() {
  const { o, problems } = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (problems.length) {
    for (const p of problems) process.stderr.write(`udp-cost: ${p}\n`);
    return 2;
  }
  const { tools } = detectTools(o.legacyGo);
  const need = [['gcc', tools.gcc], ...(o.strace ? [['strace', which('strace')]] : [])];
  for (const [what, found] of need) {
    if (!found) {
      process.stderr.write(`udp-cost: ${what} is missing: apt-get install -y ${what}\n`);
      return 2;
    }
  }
  const perf = which('perf') !== null;
  if (!perf) log('perf is missing: no system call count without strace (apt-get install -y linux-perf)');
  const proxyCli = path.join(REPO, 'dist', 'bin', 'kube-userspace-proxy.js');
  if (!fs.existsSync(proxyCli)) {
    process.stderr.write(`udp-cost: ${proxyCli} does not exist: run \`npm run build\` first\n`);
    return 2;
  }
  const targets = o.targets.filter((t) => {
    if (t === 'nginx' && !tools.nginx) log('nginx is missing: skipped (apt-get install -y nginx libnginx-mod-stream)');
    else if (t === 'legacy' && !tools.go) log('go is missing: the legacy target is skipped (apt-get install -y golang-go)');
    else if (t === 'legacy' && !fs.existsSync(o.legacyGo)) log(`${o.legacyGo} does not exist: the legacy target is skipped (pass --legacy-go)`);
    else return true;
    return false;
  });
  const roots = {};
  for (const b of o.baselines) {
    for (const t of o.targets.filter((t) => t.startsWith('proxy'))) {
      targets.push(`${t}@${path.basename(b)}`);
      roots[`${t}@${path.basename(b)}`] = b;
    }
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kup-udp-cost-'));
  setLogDir(path.join(tmp, 'logs'));
  const echoPort = o.portBase + 301;
  const front = (t) => o.portBase + 1000 + 10 * targets.indexOf(t) + 2;
  const busy = await busyPorts([], [echoPort, ...targets.filter((t) => t !== 'direct').map(front)]);
  if (busy.length) {
    process.stderr.write(`udp-cost: ports in use on 127.0.0.1: ${busy.join(', ')}; pick others with --port-base\n`);
    return 2;
  }
  const ctx = {
    benchDir: BENCH_DIR,
    tmp,
    tools,
    layout: { udpBackend: echoPort },
    fdHard: Number.isFinite(fdLimits().hard) ? fdLimits().hard : 1_048_576,
    proxyCli,
    proxyNodeArgs: [],
    maxConns: 0,
    cpuProfDir: null,
    bin: await buildCTools(path.join(BENCH_DIR, 'tools'), path.join(tmp, 'bin')),
    legacyBin: null,
  };
  if (targets.includes('legacy')) ctx.legacyBin = await buildLegacy(o.legacyGo, tmp, path.join(tmp, 'bin'));
  const results = {};
  try {
    await startBackends(ctx, { udp: true });
    const running = {};
    for (const t of targets.filter((t) => t !== 'direct')) {
      const root = roots[t];
      const jsPath = t.split('@')[0].endsWith(JS_PATH_SUFFIX);
      const kind = t.split('@')[0].replace(JS_PATH_SUFFIX, '');
      const service = { name: 'bench-udp', proto: 'UDP', ip: '127.0.0.1', port: front(t), endpoints: [{ ip: '127.0.0.1', port: echoPort }] };
      const tctx = root ? { ...ctx, proxyCli: path.join(root, 'dist', 'bin', 'kube-userspace-proxy.js') } : ctx;
      // The spawned proxy takes this process's environment as it is at spawn time.
      if (jsPath) process.env.KUP_UDP_NATIVE = '0';
      const inst = await startTarget(tctx, kind, `udpcost-${targets.indexOf(t)}`, [service]).finally(() => {
        if (jsPath) delete process.env.KUP_UDP_NATIVE;
      });
      if (!inst.ok) throw new Error(`${t} did not start; see ${inst.proc.logPath}`);
      running[t] = inst.proc;
      // Warm-up (JIT, sessions opened), discarded.
      await udpLoad(ctx.bin['udp-rr'], front(t), 1);
    }
    for (let rep = 0; rep < o.reps; rep++) {
      for (const t of rotate(targets, rep)) {
        const port = t === 'direct' ? echoPort : front(t);
        const r = (results[t] ??= { rtps: [], cpuUs: [], usrUs: [], sysUs: [], perfSyscalls: [], syscalls: [], calls: [] });
        const pg = running[t]?.pid;
        const cpu0 = pg ? groupCpu(pg) : null;
        const rr = await udpLoad(ctx.bin['udp-rr'], port, o.duration);
        if (!rr || !(rr.received > 0)) {
          log(`${t}: no round trip came back`);
          continue;
        }
        r.rtps.push(rr.rtps);
        if (pg) {
          const cpu1 = groupCpu(pg);
          r.usrUs.push(((cpu1.usr - cpu0.usr) * 1e6) / rr.received);
          r.sysUs.push(((cpu1.sys - cpu0.sys) * 1e6) / rr.received);
          r.cpuUs.push(r.usrUs.at(-1) + r.sysUs.at(-1));
        }
        let line = `${t}: ${Math.round(rr.rtps)} rt/s${pg ? `, ${fmt(r.cpuUs.at(-1))} µs CPU/rt` : ''}`;
        if (pg && perf) {
          r.perfSyscalls.push(await perfCounted(ctx, pg, port, o.duration));
          line += `, ${fmt(r.perfSyscalls.at(-1), 2)} syscalls/rt (perf)`;
        }
        if (pg && o.strace) {
          const s = await straced(ctx, pg, port, o.duration);
          if (s.rr && s.rr.received > 0 && s.summary.total > 0) {
            r.syscalls.push(s.summary.total / s.rr.received);
            r.calls.push(Object.fromEntries(Object.entries(s.summary.calls).map(([k, v]) => [k, v / s.rr.received])));
            line += `, ${fmt(r.syscalls.at(-1), 2)} syscalls/rt (strace, which slows it to ${Math.round(s.rr.rtps)} rt/s; ${s.processes} processes)`;
          }
        }
        log(line);
      }
    }
  } finally {
    await stopAll();
    if (!process.env.KUP_KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
  }
  const rows = [
    '| target | round trips/s | CPU µs / round trip (user / system) | syscalls / round trip (perf) | syscalls / round trip (strace) | most frequent under strace (per round trip) |',
    '|---|---:|---:|---:|---:|---|',
  ];
  for (const t of targets) {
    const r = results[t];
    if (!r) continue;
    const top = {};
    for (const c of r.calls) for (const [k, v] of Object.entries(c)) (top[k] ??= []).push(v);
    const most = Object.entries(top)
      .map(([k, v]) => [k, median(v)])
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([k, v]) => `${k} ${fmt(v, 2)}`)
      .join(', ');
    rows.push(
      `| ${t} | ${Math.round(median(r.rtps))} | ${fmt(median(r.cpuUs))} (${fmt(median(r.usrUs))} / ${fmt(median(r.sysUs))}) | ${fmt(median(r.perfSyscalls), 2)} | ${fmt(median(r.syscalls), 2)} | ${most} |`,
    );
  }
  process.stdout.write(
    `\nmedians of ${o.reps} round(s) of ${o.duration} s; loadavg ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n${rows.join('\n')}\n`,
  );
  if (o.out) fs.writeFileSync(o.out, JSON.stringify({ date: new Date().toISOString(), options: o, results }, null, 2));
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    process.stderr.write(`udp-cost: ${err.stack ?? err}\n`);
    await stopAll();
    process.exit(1);
  },
);
