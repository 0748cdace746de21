#!/usr/bin/env node
// `node bench/syscalls.mjs`: where a proxied connection's cost goes, per target, in figures a busy
// machine does not distort much: CPU time of the proxy's processes per connection (utime+stime
// from /proc before and after a bounded load, ÷ connections) and system calls per connection
// (strace -c over a second bounded load, ÷ connections). See bench/README.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseWrk } from './lib/loads.mjs';
import { buildLegacy, busyPorts, detectTools } from './lib/prereqs.mjs';
import { fdLimits, groupCpu, log, runBounded, setLogDir, stop, stopAll } from './lib/procs.mjs';
import { layout, mainServices, startBackends, startTarget } from './lib/targets.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, '..');
const TARGETS = ['proxy', 'proxy-workers', 'haproxy', 'legacy', 'nginx'];
const SCENARIOS = { newconn: { close: true, unit: 'connection' }, keepalive: { close: false, unit: 'request' } };

const USAGE = `usage: node bench/syscalls.mjs [options]

Per target: CPU µs per connection (utime+stime of the target's processes over a bounded wrk load)
and system calls per connection (strace -c -f over a second bounded load), with the most frequent
calls. Needs wrk, strace, nginx (the backend), haproxy and go for those targets; npm run build.

  --targets a,b       of ${TARGETS.join(',')} (default proxy,haproxy,legacy)
  --scenario S        newconn (wrk -H 'Connection: close', the default) or keepalive
  --duration S        seconds per load run (default 5)
  --connections N     wrk's connections (default 50; 1 measures one round trip at a time, where
                      the proxy's own latency shows instead of the machine's CPU contention)
  --proxy-root DIR    the checkout whose dist/ is measured (default this one)
  --node PATH         the node binary that runs the proxy (default this one)
  --baseline DIR      also measure the proxy of another checkout's dist/ (say, a build of the
                      previous commit), as target "baseline", in the same run
  --rounds N          measure every target N times, in turn (default 1)
  --port-base P       first port of the layout (default 27000)
  --legacy-go PATH    the legacy stand-in's main.go (default ../shared/bench/legacy-go/main.go)
  --out FILE          also write the results as JSON to FILE`;

function parseArgs(argv) {
  const o = {
    targets: ['proxy', 'haproxy', 'legacy'],
    scenario: 'newconn',
    duration: 5,
    connections: 50,
    proxyRoot: REPO,
    node: process.execPath,
    portBase: 27_000,
    out: null,
    baseline: null,
    rounds: 1,
    legacyGo: path.resolve(REPO, '..', 'shared', 'bench', 'legacy-go', 'main.go'),
  };
  const problems = [];
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i];
    switch (argv[i]) {
      case '--targets':
        o.targets = String(v()).split(',').filter(Boolean);
        for (const t of o.targets) if (!TARGETS.includes(t)) problems.push(`--targets: unknown "${t}" (known: ${TARGETS.join(', ')})`);
        break;
      case '--scenario':
        o.scenario = v();
        if (!(o.scenario in SCENARIOS)) problems.push(`--scenario: unknown "${o.scenario}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
        break;
      case '--duration':
        o.duration = Number(v());
        if (!(o.duration >= 1 && o.duration <= 120)) problems.push('--duration must be a number from 1 to 120');
        break;
      case '--connections':
        o.connections = Number(v());
        if (!(Number.isInteger(o.connections) && o.connections >= 1 && o.connections <= 1000)) problems.push('--connections must be a whole number from 1 to 1000');
        break;
      case '--proxy-root':
        o.proxyRoot = path.resolve(v());
        break;
      case '--node':
        o.node = v();
        break;
      case '--baseline':
        o.baseline = path.resolve(v());
        break;
      case '--rounds':
        o.rounds = Number(v());
        if (!(Number.isInteger(o.rounds) && o.rounds >= 1 && o.rounds <= 20)) problems.push('--rounds must be a whole number from 1 to 20');
        break;
      case '--port-base':
        o.portBase = Number(v());
        if (!(o.portBase >= 1024 && o.portBase <= 29_000)) problems.push('--port-base must be a number from 1024 to 29000');
        break;
      case '--out':
        o.out = path.resolve(v());
        break;
      case '--legacy-go':
        o.legacyGo = path.resolve(v());
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        problems.push(`unknown argument ${argv[i]}`);
    }
  }
  return { o, problems };
}

/** Thread and process ids of a process group (every thread of every member), for strace -p. */
function groupTasks(pgid) {
  const tasks = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      for (const t of fs.readdirSync(`/proc/${d}/task`)) tasks.push(Number(t));
    } catch {
      // exited meanwhile
    }
  }
  return tasks;
}

/**
 * Context switches of a process group's threads so far: voluntary (a thread slept, say in
 * epoll_wait, and was woken: one per wakeup) and involuntary (it was runnable and the scheduler
 * took the CPU away: each one is a stall for every connection that thread serves).
 */
function groupSwitches(pgid) {
  let voluntary = 0;
  let involuntary = 0;
  for (const t of groupTasks(pgid)) {
    try {
      const status = fs.readFileSync(`/proc/${t}/status`, 'latin1');
      voluntary += Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
      involuntary += Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return { voluntary, involuntary };
}

/** strace -c's table: {name: calls}, and the total. */
export function parseStraceSummary(text) {
  const calls = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$/.exec(line);
    if (!m || m[3] === 'total') continue;
    calls[m[3]] = Number(m[1]);
    total += Number(m[1]);
  }
  return { calls, total };
}

async function wrk(tools, port, close, seconds, name, connections) {
  const args = [`-t${Math.min(2, connections)}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}/small.txt`);
  const r = await runBounded(name, tools.wrk, args, { timeoutMs: (seconds + 20) * 1000 });
  const w = parseWrk(r.stdout);
  if (!(w.requests > 0)) throw new Error(`wrk gave no result against :${port}`);
  return w;
}

async function measure(ctx, target, inst, o) {
  const { close } = SCENARIOS[o.scenario];
  const port = ctx.layout.front(target, 'http');
  const pg = inst.proc.pid;
  await wrk(ctx.tools, port, close, 1, 'warmup-wrk', o.connections);
  // CPU: a load of its own, so that strace's overhead does not count.
  const c0 = groupCpu(pg);
  const s0 = groupSwitches(pg);
  const w = await wrk(ctx.tools, port, close, o.duration, 'load-wrk-cpu', o.connections);
  const c1 = groupCpu(pg);
  const s1 = groupSwitches(pg);
  const wakeups = (s1.voluntary - s0.voluntary) / w.requests;
  const preempted = (s1.involuntary - s0.involuntary) / w.requests;
  const cpuUs = ((c1.usr - c0.usr + c1.sys - c0.sys) * 1e6) / w.requests;
  const sysUs = ((c1.sys - c0.sys) * 1e6) / w.requests;
  // System calls: strace attached to every thread of every process of the target, for one load.
  const straceOut = path.join(ctx.tmp, `strace-${target}.txt`);
  const tasks = groupTasks(pg);
  const st = spawn('strace', ['-c', '-f', '-o', straceOut, ...tasks.flatMap((t) => ['-p', String(t)])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let straceErr = '';
  st.stderr.setEncoding('utf8');
  st.stderr.on('data', (d) => {
    straceErr += d;
  });
  const stExit = new Promise((resolve) => st.on('exit', resolve));
  // strace says "Process N attached" once per task; the load starts after the last.
  const deadline = Date.now() + 10_000;
  while ((straceErr.match(/attached/g) ?? []).length < tasks.length && Date.now() < deadline) await sleep(20);
  const ws = await wrk(ctx.tools, port, close, o.duration, 'load-wrk-strace', o.connections);
  st.kill('SIGINT');
  await Promise.race([stExit, sleep(10_000)]);
  if (st.exitCode === null) st.kill('SIGKILL');
  const { calls, total } = parseStraceSummary(fs.existsSync(straceOut) ? fs.readFileSync(straceOut, 'utf8') : '');
  const perConn = Object.fromEntries(
    Object.entries(calls)
      .map(([k, n]) => [k, n / ws.requests])
      .sort((a, b) => b[1] - a[1]),
  );
  return { target, rate: w.rps, p99Ms: w.p99Ms, cpuUs, sysUs, wakeups, preempted, syscalls: total / ws.requests, straceRate: ws.rps, perConn };
}

function table(results, unit) {
  const lines = [
    `| target | ${unit}s/s (CPU run) | p99 ms | CPU µs/${unit} (of which sys) | wakeups/${unit} | preempted/${unit} | syscalls/${unit} | most frequent calls per ${unit} |`,
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of results) {
    const top = Object.entries(r.perConn)
      .filter(([, n]) => n >= 0.05)
      .slice(0, 12)
      .map(([k, n]) => `${k} ${n.toFixed(2)}`)
      .join(', ');
    const p99 = Number.isFinite(r.p99Ms) ? r.p99Ms.toFixed(2) : '–';
    lines.push(
      `| ${r.target} | ${Math.round(r.rate)} | ${p99} | ${r.cpuUs.toFixed(1)} (${r.sysUs.toFixed(1)}) | ${r.wakeups.toFixed(3)} | ${r.preempted.toFixed(3)} | ${r.syscalls.toFixed(1)} | ${top} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const { o, problems } = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { tools } = detectTools(o.legacyGo);
  for (const [tool, needed] of [
    ['wrk', true],
    ['nginx', true],
    ['haproxy', o.targets.includes('haproxy')],
    ['go', o.targets.includes('legacy')],
  ]) {
    if (needed && !tools[tool]) problems.push(`${tool} is missing: apt-get install -y ${tool === 'go' ? 'golang-go' : tool}`);
  }
  if (o.targets.includes('legacy') && !fs.existsSync(o.legacyGo)) problems.push(`${o.legacyGo} does not exist: pass --legacy-go PATH/TO/main.go`);
  if (!fs.existsSync('/usr/bin/strace') && !fs.existsSync('/bin/strace')) problems.push('strace is missing: apt-get install -y strace');
  const proxyCli = path.join(o.proxyRoot, 'dist', 'bin', 'kube-userspace-proxy.js');
  if (o.targets.some((t) => t.startsWith('proxy')) && !fs.existsSync(proxyCli)) problems.push(`${proxyCli} does not exist: run npm run build first`);
  const baselineCli = o.baseline && path.join(o.baseline, 'dist', 'bin', 'kube-userspace-proxy.js');
  if (baselineCli && !fs.existsSync(baselineCli)) problems.push(`${baselineCli} does not exist: build that checkout first`);
  if (problems.length) {
    for (const p of problems) process.stderr.write(`bench:syscalls: ${p}\n`);
    process.stderr.write(`\n${USAGE}\n`);
    return 2;
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kup-syscalls-'));
  setLogDir(path.join(tmp, 'logs'));
  const L = layout(o.portBase);
  const busy = await busyPorts([...L.httpBackends, ...o.targets.map((t) => L.front(t, 'http'))], []);
  if (busy.length) {
    process.stderr.write(`bench:syscalls: ports already in use on 127.0.0.1: ${busy.join(', ')}; pick others with --port-base\n`);
    return 2;
  }
  const { hard } = fdLimits();
  const ctx = {
    benchDir: BENCH_DIR,
    tmp,
    tools,
    layout: L,
    fdHard: Number.isFinite(hard) ? hard : 1_048_576,
    proxyCli,
    proxyNodeArgs: [],
    maxConns: 0,
    cpuProfDir: null,
    bin: {},
    legacyBin: null,
  };
  const results = [];
  try {
    if (o.targets.includes('legacy')) ctx.legacyBin = await buildLegacy(o.legacyGo, tmp, path.join(tmp, 'bin'));
    await startBackends(ctx, { http: true });
    const list = baselineCli ? [...o.targets, 'baseline'] : o.targets;
    for (let round = 0; round < o.rounds; round++)
      for (const name of list) {
        // The baseline is the proxy target of another checkout, on the same port.
        const t = name === 'baseline' ? 'proxy' : name;
        const tctx = name === 'baseline' ? { ...ctx, proxyCli: baselineCli } : ctx;
        // The proxy runs under --node; the others are binaries.
        const saved = process.execPath;
        const inst = await (async () => {
          if (!t.startsWith('proxy')) return startTarget(tctx, t, 'main', mainServices(L, t));
          process.execPath = o.node;
          try {
            return await startTarget(tctx, t, 'main', mainServices(L, t));
          } finally {
            process.execPath = saved;
          }
        })();
        if (!inst.ok) {
          log(`target ${t} did not start; see ${inst.proc.logPath}`);
          await stop(inst.proc);
          continue;
        }
        try {
          const r = { ...(await measure(ctx, t, inst, o)), target: name };
          log(`${name}: ${r.cpuUs.toFixed(1)} CPU µs and ${r.syscalls.toFixed(1)} system calls per ${SCENARIOS[o.scenario].unit}`);
          results.push(r);
        } finally {
          await stop(inst.proc);
        }
      }
  } finally {
    await stopAll(3000);
  }
  process.stdout.write(
    `\n${o.scenario}, wrk -t${Math.min(2, o.connections)} -c${o.connections} -d${o.duration}s${SCENARIOS[o.scenario].close ? " -H 'Connection: close'" : ''}, proxy on ${o.node === process.execPath ? process.version : o.node}\n\n`,
  );
  process.stdout.write(`${table(results, SCENARIOS[o.scenario].unit)}\n`);
  if (o.out) fs.writeFileSync(o.out, JSON.stringify({ options: o, results }, null, 2));
  fs.rmSync(tmp, { recursive: true, force: true });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench:syscalls: ${err.stack ?? err}\n`);
    stopAll(2000).finally(() => process.exit(1));
  },
);
