// The things measured ("targets"), the backends behind them, and how each is configured.
//
// A target is given a list of services, {name, proto, ip, port, endpoints: [{ip, port}]}, and
// renders it its own way: HAProxy `listen` sections, nginx stream servers, the legacy stand-in's
// arguments, or Service + EndpointSlice manifests for this project's CLI. Everything listens on
// loopback. Ports are laid out from a base (--port-base, default 24000), all below the ephemeral
// range so outgoing connections never take them.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NGINX_STREAM_MODULE } from './prereqs.mjs';
import { log, spawnManaged } from './procs.mjs';
import { waitTcp, waitUdp } from './net-util.mjs';

export const ALL_TARGETS = ['direct', 'proxy', 'proxy-workers', 'haproxy', 'haproxy-big', 'nginx', 'legacy'];

export const TARGET_LABEL = {
  direct: 'direct (no proxy)',
  proxy: 'kube-userspace-proxy',
  'proxy-workers': 'kube-userspace-proxy --workers',
  haproxy: 'HAProxy (16 KiB buffers)',
  'haproxy-big': 'HAProxy tune.bufsize 262144',
  nginx: 'nginx stream',
  legacy: 'legacy userspace (Go)',
};

const SLOT = { haproxy: 1, 'haproxy-big': 2, nginx: 3, legacy: 4, proxy: 5, 'proxy-workers': 6 };
const SERVICE_INDEX = { http: 0, iperf: 1, udp: 2 };

export function layout(base) {
  return {
    httpBackends: [base + 81, base + 82],
    iperfBackend: base + 201,
    udpBackend: base + 301,
    holdBackends: [base + 401, base + 402, base + 403, base + 404],
    /** Front port of TARGET for service kind http / iperf / udp (load scenarios). */
    front: (target, kind) => base + 1000 + 10 * SLOT[target] + SERVICE_INDEX[kind],
    /** Front port of TARGET's fresh instance for the memory scenario. */
    memFront: (target) => base + 2000 + SLOT[target],
    /** Service port of the start-up scenario, on 127.100.x.y (one address per service). */
    startupPort: base + 3000,
    startupPrefix: '127.100',
    /** The service added after start-up to time one incremental sync. */
    extraIp: '127.101.0.1',
  };
}

/** The i-th of the start-up scenario's service addresses: 127.100.1.1 … 127.100.40.250. */
export function startupIp(i) {
  return `127.100.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

// --------------------------------------------------------------------------------------------
// Service sets

export function mainServices(L, target) {
  const lo = '127.0.0.1';
  const services = [
    { name: 'bench-http', proto: 'TCP', ip: lo, port: L.front(target, 'http'), endpoints: L.httpBackends.map((port) => ({ ip: lo, port })) },
    { name: 'bench-iperf', proto: 'TCP', ip: lo, port: L.front(target, 'iperf'), endpoints: [{ ip: lo, port: L.iperfBackend }] },
  ];
  if (target !== 'haproxy' && target !== 'haproxy-big') {
    services.push({ name: 'bench-udp', proto: 'UDP', ip: lo, port: L.front(target, 'udp'), endpoints: [{ ip: lo, port: L.udpBackend }] });
  }
  return services;
}

export function memServices(L, target) {
  return [{ name: 'bench-hold', proto: 'TCP', ip: '127.0.0.1', port: L.memFront(target), endpoints: L.holdBackends.map((port) => ({ ip: '127.0.0.1', port })) }];
}

export function startupServices(L, count) {
  const services = [];
  for (let i = 0; i < count; i++) {
    services.push({
      name: `svc-${String(i).padStart(5, '0')}`,
      proto: 'TCP',
      ip: startupIp(i),
      port: L.startupPort,
      endpoints: [{ ip: '127.0.0.1', port: L.holdBackends[i % L.holdBackends.length] }],
    });
  }
  return services;
}

/**
 * Processes of the proxy-workers target: one per CPU (--workers auto), except in the memory
 * scenario, where it takes as many as hold --max-conns within the per-process descriptor limit
 * (two per connection; the kernel spreads connections unevenly, hence the 25% headroom).
 */
export function proxyWorkers(ctx, kind) {
  const cpus = os.availableParallelism();
  if (kind !== 'mem') return cpus;
  const perProcess = Math.floor((ctx.fdHard - 512) / 2);
  return Math.min(64, Math.max(cpus, Math.ceil((ctx.maxConns * 1.25) / perProcess)));
}

// --------------------------------------------------------------------------------------------
// Renderers

function fill(template, values) {
  return template.replace(/\{\{([A-Z_0-9]+)\}\}/g, (_, k) => {
    if (!(k in values)) throw new Error(`template field ${k} not given`);
    return String(values[k]);
  });
}

function template(ctx, name) {
  return fs.readFileSync(path.join(ctx.benchDir, 'templates', name), 'utf8');
}

export function renderHaproxy(ctx, services, { maxconn, bufsize, idleTimeout = '120s' }) {
  const sections = services.filter((s) => s.proto === 'TCP').map((s) => [`listen ${s.name}`, `  bind ${s.ip}:${s.port}`, ...s.endpoints.map((e, i) => `  server e${i} ${e.ip}:${e.port}`)].join('\n'));
  return fill(template(ctx, 'haproxy.cfg'), {
    MAXCONN: maxconn,
    GLOBAL_EXTRA: bufsize ? `  tune.bufsize ${bufsize}` : '',
    IDLE_TIMEOUT: idleTimeout,
    SERVICES: sections.join('\n'),
  });
}

export function renderNginxStream(ctx, services, { dir, nofile, workerConnections }) {
  const blocks = services.map((s) => {
    const up = `  upstream ${s.name} {${s.endpoints.map((e) => ` server ${e.ip}:${e.port};`).join('')} }`;
    const listen = s.proto === 'UDP' ? `listen ${s.ip}:${s.port} udp reuseport; proxy_timeout 30s;` : `listen ${s.ip}:${s.port} backlog=4096;`;
    return `${up}\n  server { ${listen} proxy_pass ${s.name}; }`;
  });
  return fill(template(ctx, 'nginx-stream.conf'), {
    STREAM_MODULE: NGINX_STREAM_MODULE,
    DIR: dir,
    NOFILE: nofile,
    WORKER_CONNECTIONS: workerConnections,
    SERVICES: blocks.join('\n'),
  });
}

export function legacyArgs(services) {
  return services.map((s) => `${s.proto.toLowerCase()}:${s.ip}:${s.port}=${s.endpoints.map((e) => `${e.ip}:${e.port}`).join(',')}`);
}

/** A Service and its EndpointSlices (one per distinct endpoint port) as YAML documents. */
export function serviceManifest(s) {
  const portName = s.proto.toLowerCase();
  const docs = [
    [
      'apiVersion: v1',
      'kind: Service',
      `metadata: {name: ${s.name}, namespace: bench}`,
      'spec:',
      '  type: ClusterIP',
      `  clusterIP: ${s.ip}`,
      `  ports: [{name: ${portName}, protocol: ${s.proto}, port: ${s.port}, targetPort: ${portName}}]`,
    ].join('\n'),
  ];
  const byPort = new Map();
  for (const e of s.endpoints) {
    if (!byPort.has(e.port)) byPort.set(e.port, []);
    byPort.get(e.port).push(e.ip);
  }
  let i = 0;
  for (const [port, ips] of byPort) {
    docs.push(
      [
        'apiVersion: discovery.k8s.io/v1',
        'kind: EndpointSlice',
        `metadata: {name: ${s.name}-${i++}, namespace: bench, labels: {kubernetes.io/service-name: ${s.name}}}`,
        'addressType: IPv4',
        `ports: [{name: ${portName}, protocol: ${s.proto}, port: ${port}}]`,
        `endpoints: [${ips.map((ip) => `{addresses: ["${ip}"], conditions: {ready: true}}`).join(', ')}]`,
      ].join('\n'),
    );
  }
  return docs.join('\n---\n');
}

/** Writes SERVICES as manifests into DIR, at most perFile services per file. */
export function writeManifests(dir, services, perFile = 1000) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < services.length; i += perFile) {
    const chunk = services.slice(i, i + perFile);
    const name = `services-${String(i / perFile).padStart(3, '0')}.yaml`;
    fs.writeFileSync(path.join(dir, name), `${chunk.map(serviceManifest).join('\n---\n')}\n`);
  }
}

// --------------------------------------------------------------------------------------------
// Starting targets

/**
 * Prepares TARGET's configuration for SERVICES under ctx.tmp/<target>-<kind> and returns
 * {cmd, args, dir}: what to spawn. kind is 'main' (load scenarios), 'mem' or 'startup'.
 */
export function prepareTarget(ctx, target, kind, services) {
  const dir = path.join(ctx.tmp, `${target}-${kind}`);
  fs.mkdirSync(dir, { recursive: true });
  const fdCap = ctx.fdHard;
  const tcpCount = services.filter((s) => s.proto === 'TCP').length;
  switch (target) {
    case 'proxy':
    case 'proxy-workers': {
      const manifests = path.join(dir, 'manifests');
      writeManifests(manifests, services);
      const nodeArgs = [...ctx.proxyNodeArgs];
      if (ctx.cpuProfDir && kind === 'main') nodeArgs.push('--cpu-prof', '--cpu-prof-dir', ctx.cpuProfDir);
      const workers = target === 'proxy' ? [] : ['--workers', String(proxyWorkers(ctx, kind))];
      return {
        dir,
        manifests,
        cmd: process.execPath,
        args: [...nodeArgs, ctx.proxyCli, '--manifests', manifests, '--log-level', 'warn', '--bind-address', '127.0.0.1', ...workers],
      };
    }
    case 'haproxy':
    case 'haproxy-big': {
      // HAProxy wants 2 descriptors per connection plus its listeners within the process limit.
      const maxconn = Math.max(100, Math.floor((fdCap - tcpCount - 500) / 2));
      const cfg = renderHaproxy(ctx, services, {
        maxconn,
        bufsize: target === 'haproxy-big' ? 262144 : undefined,
        idleTimeout: kind === 'mem' ? '900s' : '120s',
      });
      fs.writeFileSync(path.join(dir, 'haproxy.cfg'), cfg);
      return { dir, cmd: ctx.tools.haproxy, args: ['-db', '-f', path.join(dir, 'haproxy.cfg')] };
    }
    case 'nginx': {
      const workerConnections = kind === 'main' ? 8192 : fdCap - 100;
      const conf = renderNginxStream(ctx, services, { dir, nofile: fdCap, workerConnections });
      fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
      return { dir, cmd: ctx.tools.nginx, args: ['-p', `${dir}/`, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'] };
    }
    case 'legacy':
      return { dir, cmd: ctx.legacyBin, args: ['-udp-timeout', '30s', ...legacyArgs(services)] };
    default:
      throw new Error(`no such target ${target}`);
  }
}

/** Spawns a prepared target. Its descriptor limit is raised to the hard limit. */
export function spawnTarget(ctx, target, kind, prepared) {
  return spawnManaged(`${target}-${kind}`, prepared.cmd, prepared.args, { nofile: ctx.fdHard, cwd: prepared.dir });
}

/** Prepares, spawns and waits until every service of TARGET answers; null (and a log line) on failure. */
export async function startTarget(ctx, target, kind, services) {
  const prepared = prepareTarget(ctx, target, kind, services);
  const proc = spawnTarget(ctx, target, kind, prepared);
  const dead = () => proc.done;
  for (const s of services) {
    const ok = s.proto === 'TCP' ? await waitTcp(s.ip, s.port, 20_000, dead) : await waitUdp(s.ip, s.port, 20_000, dead);
    if (!ok) {
      log(`FAILED to start ${target} (${kind}): ${s.proto} ${s.ip}:${s.port} not ready within 20 s; see ${proc.logPath}${target === 'nginx' ? ` and ${prepared.dir}/error.log` : ''}`);
      return { proc, prepared, ok: false };
    }
  }
  return { proc, prepared, ok: true };
}

// --------------------------------------------------------------------------------------------
// Backends

/**
 * Starts the backends the chosen scenarios need: nginx HTTP (two ports), iperf3 server, UDP echo,
 * TCP echo (one process per port: each holds up to the per-process descriptor limit).
 * Returns { procs, files: {small, large, largeSha256} }.
 */
export async function startBackends(ctx, need) {
  const L = ctx.layout;
  const procs = [];
  const files = {};
  const check = async (proc, what, ok) => {
    if (!ok) throw new Error(`backend ${what} did not start; see ${proc.logPath}`);
  };
  if (need.http) {
    const www = path.join(ctx.tmp, 'www');
    const dir = path.join(ctx.tmp, 'nginx-backend');
    fs.mkdirSync(www, { recursive: true });
    fs.mkdirSync(dir, { recursive: true });
    files.small = path.join(www, 'small.txt');
    files.large = path.join(www, 'large.bin');
    fs.writeFileSync(files.small, 'a'.repeat(100));
    const large = crypto.randomBytes(1 << 20);
    fs.writeFileSync(files.large, large);
    files.largeSha256 = crypto.createHash('sha256').update(large).digest('hex');
    // nginx workers run as an unprivileged user: the files must be readable by anyone.
    fs.chmodSync(ctx.tmp, 0o755);
    fs.chmodSync(www, 0o755);
    fs.chmodSync(files.small, 0o644);
    fs.chmodSync(files.large, 0o644);
    const conf = fill(template(ctx, 'nginx-backend.conf'), { DIR: dir, WWW: www, NOFILE: ctx.fdHard, PORT1: L.httpBackends[0], PORT2: L.httpBackends[1] });
    fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
    const p = spawnManaged('backend-nginx', ctx.tools.nginx, ['-p', `${dir}/`, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { nofile: ctx.fdHard });
    procs.push(p);
    for (const port of L.httpBackends) await check(p, `nginx :${port}`, await waitTcp('127.0.0.1', port, 15_000, () => p.done));
  }
  if (need.iperf) {
    const p = spawnManaged('backend-iperf3', ctx.tools.iperf3, ['-s', '-B', '127.0.0.1', '-p', String(L.iperfBackend)]);
    procs.push(p);
    await check(p, 'iperf3 -s', await waitTcp('127.0.0.1', L.iperfBackend, 15_000, () => p.done));
  }
  if (need.udp) {
    const p = spawnManaged('backend-udp-echo', ctx.bin['udp-echo'], ['127.0.0.1', String(L.udpBackend)]);
    procs.push(p);
    await check(p, 'udp-echo', await waitUdp('127.0.0.1', L.udpBackend, 15_000, () => p.done));
  }
  if (need.hold) {
    for (const port of L.holdBackends) {
      const p = spawnManaged(`backend-tcp-echo-${port}`, ctx.bin['tcp-echo'], ['127.0.0.1', String(port)], { nofile: ctx.fdHard });
      procs.push(p);
      await check(p, `tcp-echo :${port}`, await waitTcp('127.0.0.1', port, 15_000, () => p.done));
    }
  }
  return { procs, files };
}
