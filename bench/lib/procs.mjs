// Every process the benchmark starts goes through spawnManaged(): it runs in a process group of
// its own (so nginx's workers go with their master), is recorded here, and is stopped by its
// group id only: at the end, on Ctrl-C / SIGTERM, on an uncaught error, and (synchronously, with
// SIGKILL) when this process exits for any other reason.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Set();
let logDir;
let handlersInstalled = false;

export function setLogDir(dir) {
  logDir = dir;
  fs.mkdirSync(dir, { recursive: true });
}

export function log(msg) {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t}] ${msg}\n`);
}

/**
 * Starts CMD with ARGS in its own process group.
 * options: nofile (raise the soft descriptor limit to this, as far as the hard limit allows),
 * env, cwd, stdin ('pipe' to write to it), capture (keep stdout in memory as well as in the log).
 * Returns { name, pid, child, exited (promise of {code, signal}), stdout() }.
 */
export function spawnManaged(name, cmd, args, options = {}) {
  installHandlers();
  let file = cmd;
  let argv = args;
  if (options.nofile) {
    // The soft limit is raised by a shell that then exec()s the command: same PID, same group.
    file = '/bin/sh';
    argv = ['-c', `ulimit -n ${Number(options.nofile)} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`, 'sh', cmd, ...args];
  }
  const logPath = logDir ? `${logDir}/${name}.log` : '/dev/null';
  const out = fs.openSync(logPath, 'a');
  const child = spawn(file, argv, {
    detached: true,
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: [options.stdin === 'pipe' ? 'pipe' : 'ignore', options.capture ? 'pipe' : out, out],
  });
  fs.closeSync(out);
  const entry = { name, pid: child.pid, child, logPath, done: false, captured: '' };
  if (options.capture) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      entry.captured += d;
      fs.appendFileSync(logPath, d);
    });
  }
  entry.exited = new Promise((resolve) => {
    child.on('error', (err) => {
      entry.done = true;
      live.delete(entry);
      resolve({ code: null, signal: null, error: err });
    });
    child.on('exit', (code, signal) => {
      entry.done = true;
      live.delete(entry);
      resolve({ code, signal });
    });
  });
  if (child.pid !== undefined) live.add(entry);
  entry.stdout = () => entry.captured;
  return entry;
}

function killGroup(entry, signal) {
  try {
    process.kill(-entry.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the group, then SIGKILL after graceMs if it is still there. */
export async function stop(entry, graceMs = 3000) {
  if (!entry || entry.done) return;
  killGroup(entry, 'SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout');
  const r = await Promise.race([entry.exited, timer]);
  if (r === 'timeout') {
    killGroup(entry, 'SIGKILL');
    await Promise.race([entry.exited, sleep(2000)]);
  }
  // Leftover members of the group (a worker whose master is gone) go too. Only while the group
  // still has members: an empty group's id could belong to someone else's process by now.
  if (groupMembers(entry.pid).length > 0) killGroup(entry, 'SIGKILL');
}

export async function stopAll(graceMs = 3000) {
  await Promise.all([...live].map((e) => stop(e, graceMs)));
}

export function liveCount() {
  return live.size;
}

function installHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort: nothing outlives the harness, whatever way it ends.
  process.on('exit', () => {
    for (const e of live) {
      killGroup(e, 'SIGKILL');
    }
  });
  let interrupted = false;
  const onSignal = (sig) => {
    if (interrupted) {
      for (const e of live) killGroup(e, 'SIGKILL');
      process.exit(130);
    }
    interrupted = true;
    log(`${sig}: stopping ${live.size} process(es) started by the benchmark`);
    stopAll(2000).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
}

/** Runs a command to completion (bounded by timeoutMs, then SIGKILL); resolves {code, signal, stdout, timedOut}. */
export async function runBounded(name, cmd, args, { timeoutMs, nofile, stdin, env, cwd } = {}) {
  const p = spawnManaged(name, cmd, args, { capture: true, nofile, stdin: stdin !== undefined ? 'pipe' : undefined, env, cwd });
  if (stdin !== undefined) {
    p.child.stdin.on('error', () => {});
    p.child.stdin.end(stdin);
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(p, 'SIGKILL');
  }, timeoutMs);
  const r = await p.exited;
  clearTimeout(timer);
  return { ...r, stdout: p.stdout(), timedOut, logPath: p.logPath };
}

// ---------------------------------------------------------------------------------------------
// CPU and memory of a process group, from /proc.

const CLK_TCK = 100;
const PAGE = 4096;

function groupMembers(pgid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] = state (field 3), f[2] = pgrp (field 5), f[11] utime (14), f[12] stime (15), f[13] cutime, f[14] cstime
    if (Number(f[2]) === pgid) out.push({ pid: Number(d), f });
  }
  return out;
}

/** {usr, sys} CPU seconds used by the group so far (live members + the leader's reaped children). */
export function groupCpu(pgid) {
  let usr = 0;
  let sys = 0;
  for (const m of groupMembers(pgid)) {
    usr += Number(m.f[11]);
    sys += Number(m.f[12]);
    if (m.pid === pgid) {
      usr += Number(m.f[13]);
      sys += Number(m.f[14]);
    }
  }
  return { usr: usr / CLK_TCK, sys: sys / CLK_TCK };
}

/** Resident memory of the group in bytes (shared pages of several processes are counted per process). */
export function groupRss(pgid) {
  let pages = 0;
  for (const m of groupMembers(pgid)) {
    try {
      pages += Number(fs.readFileSync(`/proc/${m.pid}/statm`, 'latin1').split(' ')[1]);
    } catch {
      // exited meanwhile
    }
  }
  return pages * PAGE;
}

/** Samples the group's RSS every intervalMs until stop() is called; stop() returns the peak. */
export function rssSampler(pgid, intervalMs = 500) {
  let peak = groupRss(pgid);
  const t = setInterval(() => {
    const r = groupRss(pgid);
    if (r > peak) peak = r;
  }, intervalMs);
  return {
    stop() {
      clearInterval(t);
      const r = groupRss(pgid);
      return Math.max(peak, r);
    },
  };
}

/** The descriptor limits this process may give its children: {soft, hard}. */
export function fdLimits() {
  const text = fs.readFileSync('/proc/self/limits', 'utf8');
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/);
  const n = (v) => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: n(soft), hard: n(hard) };
}
