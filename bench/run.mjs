#!/usr/bin/env node
// `npm run bench`: this proxy side by side with a direct connection, HAProxy, nginx stream and the
// legacy userspace data path, on loopback. See bench/README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { topOfProfile } from './lib/cpuprofile-top.mjs';
import { checkDownloads } from './lib/integrity.mjs';
import { LOAD_SCENARIOS, runLoad } from './lib/loads.mjs';
import { describeMemory, memoryCheckpoint, memoryOnce } from './lib/memory.mjs';
import { busyPorts, buildCTools, buildLegacy, describeMissing, detectTools, versions, APT_ALL } from './lib/prereqs.mjs';
import { fdLimits, groupCpu, log, rssSampler, setLogDir, stop, stopAll } from './lib/procs.mjs';
import { costTable, goals, goalsTable, mainTable, summarize } from './lib/report.mjs';
import { prepareStartup, startupOnce } from './lib/startup.mjs';
import { apiAddOneOnce } from './lib/api-add-one.mjs';
import { ALL_TARGETS, layout, mainServices, startBackends, startTarget } from './lib/targets.mjs';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, '..');

const ALL_SCENARIOS = ['bulk1', 'bulk4', 'keepalive', 'newconn', 'download', 'udp', 'memory', 'startup', 'apiadd'];
/** Scenarios of the proxy alone (API mode): the others have no Kubernetes API client. */
const PROXY_ONLY = ['apiadd'];
const SCENARIO_ALIASES = { bulk: ['bulk1', 'bulk4'], http: ['keepalive', 'newconn', 'download'] };
/** Which targets take part in which scenario. */
const SUPPORTS = {
  direct: ['bulk1', 'bulk4', 'keepalive', 'newconn', 'download', 'udp', 'memory'],
  proxy: ALL_SCENARIOS,
  'proxy-workers': ALL_SCENARIOS,
  haproxy: ['bulk1', 'bulk4', 'keepalive', 'newconn', 'download', 'memory', 'startup'],
  'haproxy-big': ['bulk1', 'bulk4', 'download'],
  nginx: ALL_SCENARIOS.filter((s) => !PROXY_ONLY.includes(s)),
  legacy: ALL_SCENARIOS.filter((s) => !PROXY_ONLY.includes(s)),
};

const USAGE = `usage: npm run bench -- [options]        (or: node bench/run.mjs [options])

Measures on loopback, side by side in one run: direct (no proxy), kube-userspace-proxy (the CLI,
fed from generated manifests, --log-level warn), HAProxy (mode tcp; default buffers, and
tune.bufsize 262144), nginx (stream) and the legacy userspace data path (Go stand-in).

  --reps N            repetitions of every scenario (default 3); figures are medians, ratios are
                      taken per repetition against the same round's reference
  --duration S        seconds per load run (default 10)
  --warmup S          seconds of discarded load per target before each load scenario (default 2)
  --targets a,b       of ${ALL_TARGETS.join(',')} (default all)
  --scenarios x,y     of ${ALL_SCENARIOS.join(',')} (default all; "bulk" = bulk1,bulk4;
                      "http" = keepalive,newconn,download)
  --out DIR           results directory (default bench-results/<timestamp>/)
  --legacy-go PATH    the legacy stand-in's main.go (default ../shared/bench/legacy-go/main.go
                      next to the repository)
  --proxy-root DIR    the checkout whose dist/bin/kube-userspace-proxy.js is measured (default:
                      this one; run npm run build first)
  --node-args "..."   extra node flags for the proxy process
  --cpu-prof          profile the proxy (node --cpu-prof) during the load scenarios; a summary of
                      the top functions lands in OUT/profiles/
  --idle-conns N      idle connections for the RSS-per-connection figure (default 10000; lowered
                      when the descriptor limit cannot fit them)
  --max-conns N       cap of the most-connections-held attempt (default 60000)
  --hold-time S       time bound of that attempt (default 60)
  --services N        service ports of the start-up scenario (default 10000)
  --port-base P       first port of the layout (default 24000; uses P+81 … P+3000)
  --keep-tmp          keep the temp dir (configs, manifests, builds)
  --help

Tools: ${APT_ALL}`;

function parseArgs(argv) {
  const o = {
    reps: 3,
    duration: 10,
    warmup: 2,
    targets: [...ALL_TARGETS],
    scenarios: [...ALL_SCENARIOS],
    out: null,
    legacyGo: path.resolve(REPO, '..', 'shared', 'bench', 'legacy-go', 'main.go'),
    proxyRoot: REPO,
    nodeArgs: [],
    cpuProf: false,
    idleConns: 10_000,
    maxConns: 60_000,
    holdTime: 60,
    services: 10_000,
    portBase: 24_000,
    keepTmp: false,
  };
  const problems = [];
  const num = (name, v, min, max) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) problems.push(`${name} must be a number from ${min} to ${max}, not ${JSON.stringify(v)}`);
    return n;
  };
  const list = (name, v, allowed, aliases = {}) => {
    const items = String(v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .flatMap((s) => aliases[s] ?? [s]);
    for (const s of items) if (!allowed.includes(s)) problems.push(`${name}: unknown "${s}" (known: ${allowed.join(', ')})`);
    if (!items.length) problems.push(`${name} needs at least one name`);
    return allowed.filter((a) => items.includes(a));
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '--reps':
        o.reps = num(flag, value(), 1, 50);
        break;
      case '--duration':
        o.duration = num(flag, value(), 1, 600);
        break;
      case '--warmup':
        o.warmup = num(flag, value(), 0, 60);
        break;
      case '--targets':
        o.targets = list(flag, value(), ALL_TARGETS);
        break;
      case '--scenarios':
        o.scenarios = list(flag, value(), ALL_SCENARIOS, SCENARIO_ALIASES);
        break;
      case '--out':
        o.out = path.resolve(value());
        break;
      case '--legacy-go':
        o.legacyGo = path.resolve(value());
        break;
      case '--proxy-root':
        o.proxyRoot = path.resolve(value());
        break;
      case '--node-args':
        o.nodeArgs = String(value()).split(/\s+/).filter(Boolean);
        break;
      case '--cpu-prof':
        o.cpuProf = true;
        break;
      case '--idle-conns':
        o.idleConns = num(flag, value(), 100, 1_000_000);
        break;
      case '--max-conns':
        o.maxConns = num(flag, value(), 100, 1_000_000);
        break;
      case '--hold-time':
        o.holdTime = num(flag, value(), 5, 600);
        break;
      case '--services':
        o.services = num(flag, value(), 1, 10_000);
        break;
      case '--port-base':
        o.portBase = num(flag, value(), 1024, 29_000);
        break;
      case '--keep-tmp':
        o.keepTmp = true;
        break;
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        problems.push(`unknown argument ${argv[i]}`);
    }
  }
  return { o, problems };
}

const rotate = (list, k) => list.slice(k % list.length).concat(list.slice(0, k % list.length));
const stamp = () => new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, '').replace('T', '-');

async function main() {
  const { o, problems } = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (problems.length) {
    for (const p of problems) process.stderr.write(`bench: ${p}\n`);
    process.stderr.write(`\n${USAGE}\n`);
    return 2;
  }
  const out = o.out ?? path.join(REPO, 'bench-results', stamp());
  fs.mkdirSync(path.join(out, 'raw'), { recursive: true });
  setLogDir(path.join(out, 'logs'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kup-bench-'));
  const started = performance.now();
  log(`results: ${out}`);

  const notes = [];
  const note = (s) => {
    notes.push(s);
    log(s);
  };
  const { tools, missing } = detectTools(o.legacyGo);
  let targets = [...o.targets];
  let scenarios = [...o.scenarios];
  for (const m of missing) {
    const hits = m.targets.some((t) => targets.includes(t)) || m.scenarios.some((s) => scenarios.includes(s));
    if (!hits) continue;
    note(describeMissing(m));
    targets = targets.filter((t) => !m.targets.includes(t));
    scenarios = scenarios.filter((s) => !m.scenarios.includes(s));
  }
  const proxyCli = path.join(o.proxyRoot, 'dist', 'bin', 'kube-userspace-proxy.js');
  if (targets.some((t) => t.startsWith('proxy')) && !fs.existsSync(proxyCli)) {
    process.stderr.write(`bench: ${proxyCli} does not exist: run \`npm run build\` first (or pass --proxy-root)\n`);
    return 2;
  }
  const { soft, hard } = fdLimits();
  const fdHard = Number.isFinite(hard) ? hard : 1_048_576;
  const checkpoint = memoryCheckpoint(o.idleConns, fdHard);
  if (scenarios.includes('memory')) {
    if (fdHard < 2 * o.maxConns + 100) {
      note(
        `descriptor limit: hard ${hard} (soft ${soft}) per process, and it cannot be raised past the hard limit without CAP_SYS_RESOURCE; ` +
          `a single-process proxy can hold at most about ${Math.floor((fdHard - 50) / 2)} proxied connections here (2 descriptors each). ` +
          'Raise it (ulimit -Hn, or LimitNOFILE= / docker --ulimit nofile=) to measure more.',
      );
    }
    if (checkpoint < o.idleConns) note(`RSS per idle connection is measured at ${checkpoint} connections instead of ${o.idleConns}, to fit that limit`);
  }
  if (o.services + 200 > fdHard && scenarios.includes('startup')) note(`--services ${o.services} is close to the descriptor limit ${fdHard}`);

  const L = layout(o.portBase);
  const ctx = {
    benchDir: BENCH_DIR,
    tmp,
    out,
    tools,
    layout: L,
    fdHard,
    proxyCli,
    proxyNodeArgs: o.nodeArgs,
    maxConns: o.maxConns,
    cpuProfDir: o.cpuProf ? path.join(out, 'profiles') : null,
    bin: {},
    legacyBin: null,
  };
  const loadScenarios = scenarios.filter((s) => s in LOAD_SCENARIOS);
  const tuples = (sc) => targets.filter((t) => SUPPORTS[t].includes(sc));
  const mainTargets = targets.filter((t) => t !== 'direct' && loadScenarios.some((sc) => SUPPORTS[t].includes(sc)));

  // Ports first: another benchmark (or anything else) on them would make every figure wrong.
  const tcpPorts = [...L.httpBackends, L.iperfBackend, ...L.holdBackends];
  for (const t of targets.filter((t) => t !== 'direct')) tcpPorts.push(L.front(t, 'http'), L.front(t, 'iperf'), L.memFront(t));
  const busy = await busyPorts(tcpPorts, [L.udpBackend, ...targets.filter((t) => t !== 'direct').map((t) => L.front(t, 'udp'))]);
  if (busy.length) {
    process.stderr.write(`bench: ports already in use on 127.0.0.1: ${busy.join(', ')} (another benchmark running?); pick others with --port-base\n`);
    return 2;
  }

  const env = {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    loadavgStart: os.loadavg(),
    versions: versions(tools),
    fdLimit: { soft, hard },
    options: { ...o, out },
    proxyCli,
    targets,
    scenarios,
  };
  const runs = [];
  const integrity = {};

  try {
    if (tools.gcc && scenarios.some((s) => ['udp', 'memory', 'startup'].includes(s))) {
      ctx.bin = await buildCTools(path.join(BENCH_DIR, 'tools'), path.join(tmp, 'bin'));
    }
    if (targets.includes('legacy')) {
      log(`building the legacy stand-in from ${o.legacyGo}`);
      ctx.legacyBin = await buildLegacy(o.legacyGo, tmp, path.join(tmp, 'bin'));
    }
    const need = {
      http: loadScenarios.some((s) => LOAD_SCENARIOS[s].service === 'http'),
      iperf: loadScenarios.some((s) => LOAD_SCENARIOS[s].service === 'iperf'),
      udp: loadScenarios.includes('udp'),
      hold: scenarios.includes('memory') || scenarios.includes('startup'),
    };
    const backends = await startBackends(ctx, need);

    // ---------------------------------------------------------------- load scenarios
    const main = {};
    if (loadScenarios.length) {
      for (const t of mainTargets) {
        const inst = await startTarget(ctx, t, 'main', mainServices(L, t));
        if (inst.ok) main[t] = inst;
        else {
          note(`target ${t} failed to start and is skipped; see ${inst.proc.logPath}`);
          await stop(inst.proc);
        }
      }
      await sleep(500);
      if (need.http) {
        for (const t of ['direct', ...Object.keys(main)].filter((t) => targets.includes(t))) {
          const port = t === 'direct' ? L.httpBackends[0] : L.front(t, 'http');
          const r = await checkDownloads('127.0.0.1', port, backends.files.largeSha256);
          integrity[t] = r;
          const line = `integrity ${t}: ${r.intact}/${r.total} parallel 1 MiB downloads intact${r.problems.length ? ` (${r.problems.join('; ')})` : ''}`;
          if (r.intact < r.total) note(`WARNING ${line}`);
          else log(line);
        }
      }
    }
    const frontOf = (t, sc) => {
      const service = LOAD_SCENARIOS[sc].service;
      if (t !== 'direct') return L.front(t, service);
      return { http: L.httpBackends[0], iperf: L.iperfBackend, udp: L.udpBackend }[service];
    };
    for (const sc of loadScenarios) {
      const tl = tuples(sc).filter((t) => t === 'direct' || main[t]);
      if (!tl.length) continue;
      log(`scenario ${sc}: ${LOAD_SCENARIOS[sc].title}; targets ${tl.join(', ')}`);
      if (o.warmup > 0) {
        for (const t of tl) await runLoad(ctx, sc, '127.0.0.1', frontOf(t, sc), o.warmup, path.join(tmp, 'warmup.txt'));
      }
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const t of rotate(tl, rep - 1)) {
          const pg = t === 'direct' ? null : main[t].proc.pid;
          const raw = path.join(out, 'raw', `${sc}.${t}.${rep}.txt`);
          const cpu0 = pg ? groupCpu(pg) : null;
          const sampler = pg ? rssSampler(pg) : null;
          const t0 = performance.now();
          const res = await runLoad(ctx, sc, '127.0.0.1', frontOf(t, sc), o.duration, raw);
          const wall = (performance.now() - t0) / 1000;
          const run = { scenario: sc, target: t, rep, ...res, raw: path.relative(out, raw) };
          if (pg) {
            const cpu1 = groupCpu(pg);
            const usr = ((cpu1.usr - cpu0.usr) / wall) * 100;
            const sys = ((cpu1.sys - cpu0.sys) / wall) * 100;
            run.cost = { cpuPct: usr + sys, usrPct: usr, sysPct: sys, peakRssMiB: sampler.stop() / 2 ** 20 };
          }
          runs.push(run);
          const m = res.ok
            ? Object.entries(res.metrics)
                .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : Number(v).toFixed(3)}`)
                .join(' ')
            : `FAILED: ${res.error}`;
          log(`  ${sc} rep ${rep} ${t}: ${m}${run.cost ? ` cpu=${run.cost.cpuPct.toFixed(0)}% rss=${run.cost.peakRssMiB.toFixed(0)}MiB` : ''}`);
          if (!res.ok) notes.push(`${sc} ${t} rep ${rep} failed: ${res.error} (raw: ${path.relative(out, raw)})`);
        }
      }
    }
    for (const t of Object.keys(main)) {
      // The proxy writes its CPU profile on a clean exit: give it time.
      await stop(main[t].proc, t.startsWith('proxy') ? 15_000 : 5000);
    }

    // ---------------------------------------------------------------- memory
    if (scenarios.includes('memory')) {
      const tl = tuples('memory');
      log(`scenario memory: idle connections held (RSS at ${checkpoint}, then up to ${o.maxConns} or the first refusal, ${o.holdTime} s at most); targets ${tl.join(', ')}`);
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const t of rotate(tl, rep - 1)) {
          const res = await memoryOnce(ctx, t, { checkpoint, maxConns: o.maxConns, holdTimeS: o.holdTime });
          runs.push({ scenario: 'memory', target: t, rep, ...res });
          log(`  memory rep ${rep} ${describeMemory(t, res)}`);
          if (!res.ok) notes.push(`memory ${t} rep ${rep} failed: ${res.error}`);
        }
      }
    }

    // ---------------------------------------------------------------- startup
    if (scenarios.includes('startup')) {
      const tl = tuples('startup');
      log(`scenario startup: ${o.services} service ports on 127.100.x.y:${L.startupPort}; targets ${tl.join(', ')}`);
      const prepared = prepareStartup(ctx, tl, o.services);
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const t of rotate(tl, rep - 1)) {
          const res = await startupOnce(ctx, t, prepared);
          runs.push({ scenario: 'startup', target: t, rep, ...res });
          const m = res.ok
            ? Object.entries(res.metrics)
                .map(([k, v]) => `${k}=${Number(v).toFixed(0)}`)
                .join(' ')
            : `FAILED: ${res.error}`;
          log(`  startup rep ${rep} ${t}: ${m}${res.ok ? ` (${res.detail.echoed}/${o.services} ports proxied a byte; stop ${res.detail.stopMs.toFixed(0)} ms)` : ''}`);
          if (!res.ok) notes.push(`startup ${t} rep ${rep} failed: ${res.error}`);
          else if (res.detail.echoed < o.services) notes.push(`startup ${t} rep ${rep}: only ${res.detail.echoed} of ${o.services} ports proxied a byte`);
        }
      }
    }

    // ---------------------------------------------------------------- apiadd
    if (scenarios.includes('apiadd')) {
      const tl = tuples('apiadd');
      log(`scenario apiadd: ${o.services} services through the test API server; targets ${tl.join(', ')}`);
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const t of rotate(tl, rep - 1)) {
          const res = await apiAddOneOnce(ctx, t, o.services);
          runs.push({ scenario: 'apiadd', target: t, rep, ...res });
          log(
            `  apiadd rep ${rep} ${t}: ${res.ok ? `ready ${res.metrics.api_ready_ms.toFixed(0)} ms, one more service ${res.metrics.api_add_one_ms.toFixed(0)} ms (median of ${res.detail.addsMs.length})` : `FAILED: ${res.error}`}`,
          );
          if (!res.ok) notes.push(`apiadd ${t} rep ${rep} failed: ${res.error}`);
        }
      }
    }
  } finally {
    await stopAll(5000);
  }

  // -------------------------------------------------------------------- report
  env.loadavgEnd = os.loadavg();
  env.elapsedS = Math.round((performance.now() - started) / 1000);
  const rows = summarize(runs);
  const goalList = goals(rows, { fdHard, checkpoint, services: o.services });
  const lines = [];
  lines.push(`# kube-userspace-proxy benchmark, ${env.date}`);
  lines.push('');
  lines.push(
    `${env.cpus} × ${env.cpuModel}, ${env.memGiB} GiB, kernel ${env.versions.kernel}, node ${env.versions.node}; ` +
      `reps ${o.reps}, ${o.duration} s per load run; loadavg ${env.loadavgStart.map((x) => x.toFixed(1)).join(' ')} → ${env.loadavgEnd.map((x) => x.toFixed(1)).join(' ')}; ${Math.round(env.elapsedS / 60)} min.`,
  );
  lines.push('Ratios: target ÷ reference within the same repetition, median (min–max) over repetitions. ↑ higher is better, ↓ lower is better.');
  lines.push('');
  lines.push(mainTable(rows));
  lines.push('');
  lines.push('## Goals');
  lines.push('');
  lines.push(goalsTable(goalList));
  if (runs.some((r) => r.cost)) {
    lines.push('');
    lines.push('## What each target spent under load (process group)');
    lines.push('');
    lines.push(costTable(runs));
  }
  const memRuns = runs.filter((r) => r.scenario === 'memory' && r.ok);
  if (memRuns.length) {
    lines.push('');
    lines.push('## Memory scenario details');
    lines.push('');
    for (const r of memRuns) lines.push(`- rep ${r.rep} ${describeMemory(r.target, r)}`);
  }
  if (Object.keys(integrity).length) {
    lines.push('');
    lines.push(
      `Integrity: ${Object.entries(integrity)
        .map(([t, r]) => `${t} ${r.intact}/${r.total}`)
        .join(', ')} parallel 1 MiB downloads intact (2 of them read slowly).`,
    );
  }
  if (notes.length) {
    lines.push('');
    lines.push('## Notes');
    lines.push('');
    for (const n of notes) lines.push(`- ${n}`);
  }
  if (ctx.cpuProfDir && fs.existsSync(ctx.cpuProfDir)) {
    for (const f of fs.readdirSync(ctx.cpuProfDir).filter((f) => f.endsWith('.cpuprofile'))) {
      const summary = topOfProfile(path.join(ctx.cpuProfDir, f), 30);
      fs.writeFileSync(path.join(ctx.cpuProfDir, `${f}.top.txt`), `${summary}\n`);
      lines.push('');
      lines.push(`CPU profile of the proxy: ${path.relative(out, path.join(ctx.cpuProfDir, f))} (summary: ${f}.top.txt)`);
    }
  }
  const text = `${lines.join('\n')}\n`;
  fs.writeFileSync(path.join(out, 'table.md'), text);
  fs.writeFileSync(path.join(out, 'results.json'), `${JSON.stringify({ env, runs, summary: rows, goals: goalList, integrity, notes }, null, 2)}\n`);
  process.stdout.write(`\n${text}\nraw results: ${path.join(out, 'results.json')}\n`);
  if (!o.keepTmp) fs.rmSync(tmp, { recursive: true, force: true });
  else log(`temp dir kept: ${tmp}`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`);
    await stopAll(2000);
    process.exitCode = 1;
  },
);
