// The load of each throughput/latency scenario, bounded in time (the tool's own duration, then a
// hard kill), against one loopback address. Each returns the figures of one run and keeps the
// tool's raw output in a file.
import fs from 'node:fs';
import { runBounded } from './procs.mjs';

export const LOAD_SCENARIOS = {
  bulk1: { title: 'bulk TCP, 1 stream (iperf3)', service: 'iperf', needs: 'iperf3' },
  bulk4: { title: 'bulk TCP, 4 streams (iperf3 -P 4)', service: 'iperf', needs: 'iperf3' },
  keepalive: { title: 'HTTP keep-alive, 100 B responses (wrk -t2 -c50)', service: 'http', needs: 'wrk' },
  newconn: { title: 'new connection per request, Connection: close (wrk -t2 -c50)', service: 'http', needs: 'wrk' },
  download: { title: '1 MiB downloads, keep-alive (wrk -t2 -c10)', service: 'http', needs: 'wrk' },
  udp: { title: 'UDP 64 B round trips (4 flows x 16 in flight)', service: 'udp', needs: 'udp-rr' },
};

/** Runs SCENARIO's load against HOST:PORT for SECONDS; raw output to RAWFILE. */
export async function runLoad(ctx, scenario, host, port, seconds, rawFile) {
  switch (scenario) {
    case 'bulk1':
    case 'bulk4':
      return iperf(ctx, scenario === 'bulk4' ? 4 : 1, host, port, seconds, rawFile);
    case 'keepalive':
      return wrk(ctx, { host, port, path: '/small.txt', connections: 50, close: false, seconds, rawFile });
    case 'newconn':
      return wrk(ctx, { host, port, path: '/small.txt', connections: 50, close: true, seconds, rawFile });
    case 'download':
      return wrk(ctx, { host, port, path: '/large.bin', connections: 10, close: false, seconds, rawFile, bytesPerRequest: 1 << 20 });
    case 'udp':
      return udp(ctx, host, port, seconds, rawFile);
    default:
      throw new Error(`no load for ${scenario}`);
  }
}

async function iperf(ctx, streams, host, port, seconds, rawFile) {
  const args = ['-c', host, '-p', String(port), '-t', String(seconds), '-P', String(streams), '-J', '--connect-timeout', '3000'];
  const r = await runBounded('load-iperf3', ctx.tools.iperf3, args, { timeoutMs: (seconds + 20) * 1000 });
  fs.writeFileSync(rawFile, r.stdout);
  let j;
  try {
    j = JSON.parse(r.stdout);
  } catch {
    return { ok: false, error: r.timedOut ? 'iperf3 timed out' : 'iperf3 printed no JSON' };
  }
  const bps = j?.end?.sum_received?.bits_per_second;
  if (j.error || !Number.isFinite(bps)) return { ok: false, error: `iperf3: ${j.error ?? 'no result'}` };
  return { ok: true, metrics: { gbps: bps / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? null } };
}

/** wrk's "2.04ms" / "850.00us" / "1.20s" in milliseconds. */
function wrkTimeMs(s) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s);
  if (!m) return NaN;
  const v = Number(m[1]);
  return { us: v / 1000, ms: v, s: v * 1000, m: v * 60000 }[m[2]];
}

export function parseWrk(text) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const p99 = /^\s+99%\s+(\S+)/m.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const total = /(\d+) requests in ([\d.]+)(\w+)/.exec(text);
  const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return {
    rps: rps ? Number(rps[1]) : NaN,
    p99Ms: p99 ? wrkTimeMs(p99[1]) : NaN,
    errors,
    socketErrors: sock ? { connect: +sock[1], read: +sock[2], write: +sock[3], timeout: +sock[4] } : null,
    requests: total ? Number(total[1]) : NaN,
  };
}

async function wrk(ctx, { host, port, path, connections, close, seconds, rawFile, bytesPerRequest }) {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency'];
  if (close) args.push('-H', 'Connection: close');
  args.push(`http://${host}:${port}${path}`);
  const r = await runBounded('load-wrk', ctx.tools.wrk, args, { timeoutMs: (seconds + 20) * 1000 });
  fs.writeFileSync(rawFile, r.stdout);
  const w = parseWrk(r.stdout);
  if (!Number.isFinite(w.rps) || w.requests === 0) return { ok: false, error: r.timedOut ? 'wrk timed out' : 'wrk gave no result' };
  const metrics = { p99_ms: w.p99Ms, errors: w.errors };
  if (bytesPerRequest) metrics.gbps = (w.rps * bytesPerRequest * 8) / 1e9;
  else if (close) metrics.cps = w.rps;
  else metrics.rps = w.rps;
  return { ok: true, metrics, detail: { socketErrors: w.socketErrors, requests: w.requests } };
}

async function udp(ctx, host, port, seconds, rawFile) {
  const args = [host, String(port), '4', '16', String(seconds), '64', '1'];
  const r = await runBounded('load-udp-rr', ctx.bin['udp-rr'], args, { timeoutMs: (seconds + 15) * 1000 });
  fs.writeFileSync(rawFile, r.stdout);
  let j;
  try {
    j = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { ok: false, error: r.timedOut ? 'udp-rr timed out' : 'udp-rr printed no result' };
  }
  if (!(j.received > 0)) return { ok: false, error: 'no datagram came back' };
  return {
    ok: true,
    metrics: { rtps: j.rtps, p99_us: j.p99_us, errors: j.refills + j.send_errors + j.corrupt },
    detail: { refills: j.refills, sendErrors: j.send_errors, corrupt: j.corrupt, p50_us: j.p50_us },
  };
}
