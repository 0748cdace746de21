// What the benchmark needs from the machine, what to do when something is missing, and the
// builds of its helper programs (C tools, the legacy Go stand-in) into the run's temp dir.
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { runBounded } from './procs.mjs';

export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';
export const APT_ALL = 'apt-get install -y haproxy nginx libnginx-mod-stream iperf3 wrk golang-go gcc';

export function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/**
 * Looks for every tool. Returns { tools: {name: path|null}, missing: [{what, apt, skips}] } where
 * skips says which targets and scenarios cannot run without it.
 */
export function detectTools(legacyGoPath) {
  const tools = {
    haproxy: which('haproxy'),
    nginx: which('nginx'),
    iperf3: which('iperf3'),
    wrk: which('wrk'),
    gcc: which('gcc'),
    go: which('go'),
    ss: which('ss'),
  };
  const streamModule = fs.existsSync(NGINX_STREAM_MODULE);
  const legacySource = legacyGoPath && fs.existsSync(legacyGoPath);
  const missing = [];
  if (!tools.haproxy) missing.push({ what: 'haproxy', apt: 'haproxy', targets: ['haproxy', 'haproxy-big'], scenarios: [] });
  if (!tools.nginx) {
    missing.push({
      what: 'nginx (also the HTTP backend)',
      apt: 'nginx',
      targets: ['nginx'],
      scenarios: ['keepalive', 'newconn', 'download'],
    });
  } else if (!streamModule) {
    missing.push({ what: `nginx stream module (${NGINX_STREAM_MODULE})`, apt: 'libnginx-mod-stream', targets: ['nginx'], scenarios: [] });
  }
  if (!tools.iperf3) missing.push({ what: 'iperf3', apt: 'iperf3', targets: [], scenarios: ['bulk1', 'bulk4'] });
  if (!tools.wrk) missing.push({ what: 'wrk', apt: 'wrk', targets: [], scenarios: ['keepalive', 'newconn', 'download'] });
  if (!tools.gcc) missing.push({ what: 'gcc (builds the UDP and connection-holding tools)', apt: 'gcc', targets: [], scenarios: ['udp', 'memory', 'startup'] });
  if (!tools.ss) missing.push({ what: 'ss (counts listening sockets)', apt: 'iproute2', targets: [], scenarios: ['startup'] });
  if (!tools.go) missing.push({ what: 'go (builds the legacy userspace stand-in)', apt: 'golang-go', targets: ['legacy'], scenarios: [] });
  else if (!legacySource) {
    missing.push({
      what: `legacy stand-in source ${legacyGoPath ?? '(none)'}`,
      apt: null,
      hint: 'pass --legacy-go PATH/TO/main.go (the Go stand-in of the legacy data path, ../shared/bench/legacy-go/main.go)',
      targets: ['legacy'],
      scenarios: [],
    });
  }
  return { tools, missing };
}

export function describeMissing(m) {
  const skips = [];
  if (m.targets.length) skips.push(`target${m.targets.length > 1 ? 's' : ''} ${m.targets.join(', ')}`);
  if (m.scenarios.length) skips.push(`scenario${m.scenarios.length > 1 ? 's' : ''} ${m.scenarios.join(', ')}`);
  const fix = m.apt ? `install it: apt-get install -y ${m.apt}` : m.hint;
  return `MISSING ${m.what}: skipping ${skips.join(' and ')}; ${fix}`;
}

/** gcc -O2 each tool under bench/tools into BINDIR. Throws with the compiler's output on failure. */
export async function buildCTools(toolsDir, binDir) {
  fs.mkdirSync(binDir, { recursive: true });
  const built = {};
  for (const f of fs.readdirSync(toolsDir).filter((f) => f.endsWith('.c'))) {
    const name = f.slice(0, -2);
    const out = path.join(binDir, name);
    const r = await runBounded(`build-${name}`, 'gcc', ['-O2', '-Wall', '-o', out, path.join(toolsDir, f)], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`gcc failed for bench/tools/${f}; see ${r.logPath}`);
    built[name] = out;
  }
  return built;
}

/** go build of the legacy stand-in (one file, standard library only) into BINDIR; no network. */
export async function buildLegacy(mainGo, workDir, binDir) {
  const src = path.join(workDir, 'legacy-src');
  fs.mkdirSync(src, { recursive: true });
  fs.copyFileSync(mainGo, path.join(src, 'main.go'));
  const out = path.join(binDir, 'legacy-go');
  const env = { ...process.env, GOPROXY: 'off', GOFLAGS: '', GOTOOLCHAIN: 'local', GO111MODULE: 'off', GOPATH: path.join(workDir, 'gopath') };
  if (!process.env.GOCACHE) {
    // Go needs a writable cache; $HOME may not be there or writable.
    env.GOCACHE = process.env.HOME && fs.existsSync(process.env.HOME) ? path.join(process.env.HOME, '.cache', 'go-build') : path.join(workDir, 'gocache');
  }
  const r = await runBounded('build-legacy-go', 'go', ['build', '-o', out, 'main.go'], { timeoutMs: 300_000, env, cwd: src });
  if (r.code !== 0) throw new Error(`go build of ${mainGo} failed; see ${r.logPath}`);
  return out;
}

/** Ports (TCP on 127.0.0.1, UDP on 127.0.0.1) already taken by someone else. */
export async function busyPorts(tcpPorts, udpPorts) {
  const busy = [];
  for (const port of tcpPorts) {
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (!ok) busy.push(`tcp/${port}`);
  }
  for (const port of udpPorts) {
    const ok = await new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind({ address: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (!ok) busy.push(`udp/${port}`);
  }
  return busy;
}

export function versions(tools) {
  const v = { node: process.version };
  const tryRun = (key, cmd, args, pick) => {
    if (!cmd) return;
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (out) v[key] = pick(out);
  };
  tryRun('haproxy', tools.haproxy, ['-v'], (o) => o.split('\n')[0]);
  tryRun('iperf3', tools.iperf3, ['--version'], (o) => o.split('\n')[0]);
  tryRun('go', tools.go, ['version'], (o) => o.trim());
  tryRun('gcc', tools.gcc, ['--version'], (o) => o.split('\n')[0]);
  // nginx -v and wrk -v print on stderr (wrk also exits 1).
  tryRun('nginx', tools.nginx, ['-v'], (o) => o.trim());
  tryRun('wrk', tools.wrk, ['-v'], (o) => o.split('\n')[0]);
  v.kernel = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return v;
}
