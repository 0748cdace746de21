// From raw runs to the tables: medians, spreads, and ratios taken per repetition (target ÷
// reference in the same round, then the median of those ratios), so that a noisy machine moves
// both sides of a ratio together.
import { TARGET_LABEL } from './targets.mjs';

export const METRICS = [
  { scenario: 'bulk1', key: 'gbps', name: 'bulk TCP, 1 stream', unit: 'Gbit/s', better: 'higher', digits: 2 },
  { scenario: 'bulk4', key: 'gbps', name: 'bulk TCP, 4 streams', unit: 'Gbit/s', better: 'higher', digits: 2 },
  { scenario: 'keepalive', key: 'rps', name: 'HTTP keep-alive 100 B', unit: 'req/s', better: 'higher', digits: 0 },
  { scenario: 'keepalive', key: 'p99_ms', name: 'HTTP keep-alive p99', unit: 'ms', better: 'lower', digits: 2 },
  { scenario: 'newconn', key: 'cps', name: 'new connections (Connection: close)', unit: 'conn/s', better: 'higher', digits: 0 },
  { scenario: 'newconn', key: 'p99_ms', name: 'new connections p99', unit: 'ms', better: 'lower', digits: 2 },
  { scenario: 'download', key: 'gbps', name: '1 MiB downloads', unit: 'Gbit/s', better: 'higher', digits: 2 },
  { scenario: 'download', key: 'p99_ms', name: '1 MiB downloads p99', unit: 'ms', better: 'lower', digits: 1 },
  { scenario: 'udp', key: 'rtps', name: 'UDP 64 B round trips', unit: 'round trips/s', better: 'higher', digits: 0 },
  { scenario: 'udp', key: 'p99_us', name: 'UDP round trip p99', unit: 'µs', better: 'lower', digits: 0 },
  { scenario: 'memory', key: 'bytes_per_conn', name: 'RSS per idle proxied connection', unit: 'bytes', better: 'lower', digits: 0 },
  { scenario: 'memory', key: 'max_held', name: 'most concurrent connections held', unit: 'connections', better: 'higher', digits: 0 },
  { scenario: 'startup', key: 'ready_ms', name: 'all service ports listening after spawn', unit: 'ms', better: 'lower', digits: 0 },
  { scenario: 'startup', key: 'cpu_ms', name: 'start-up CPU until then', unit: 'ms', better: 'lower', digits: 0 },
  { scenario: 'startup', key: 'rss_mib', name: 'RSS with all service ports open', unit: 'MiB', better: 'lower', digits: 1 },
  { scenario: 'startup', key: 'add_one_ms', name: 'one more service → listening', unit: 'ms', better: 'lower', digits: 0 },
  { scenario: 'apiadd', key: 'api_ready_ms', name: 'API mode: all service ports listening after spawn', unit: 'ms', better: 'lower', digits: 0 },
  { scenario: 'apiadd', key: 'api_add_one_ms', name: 'API mode: one more service → listening', unit: 'ms', better: 'lower', digits: 0 },
];

const TARGET_ORDER = ['direct', 'proxy', 'proxy-workers', 'haproxy', 'haproxy-big', 'nginx', 'legacy'];

export function median(values) {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(x, digits) {
  if (!Number.isFinite(x)) return '–';
  if (digits === 0) return Math.round(x).toLocaleString('en-US');
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function fmtRatio(r) {
  if (!r) return '–';
  if (r.values.length === 1) return r.median.toFixed(2);
  return `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
}

/** values[target][rep] of one metric. */
function collect(runs, metric) {
  const byTarget = new Map();
  for (const r of runs) {
    if (r.scenario !== metric.scenario || !r.ok) continue;
    const v = r.metrics?.[metric.key];
    if (!Number.isFinite(v)) continue;
    if (!byTarget.has(r.target)) byTarget.set(r.target, new Map());
    byTarget.get(r.target).set(r.rep, v);
  }
  return byTarget;
}

/** Per-repetition ratios of TARGET to REF for one metric: {values, median, min, max} or null. */
export function ratio(byTarget, target, ref) {
  const a = byTarget.get(target);
  const b = byTarget.get(ref);
  if (!a || !b) return null;
  const values = [];
  for (const [rep, v] of a) {
    const w = b.get(rep);
    if (Number.isFinite(w) && w !== 0) values.push(v / w);
  }
  if (!values.length) return null;
  return { values, median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

export function summarize(runs) {
  const rows = [];
  for (const metric of METRICS) {
    const byTarget = collect(runs, metric);
    const targets = [...byTarget.keys()].sort((a, b) => TARGET_ORDER.indexOf(a) - TARGET_ORDER.indexOf(b));
    for (const t of targets) {
      const vals = [...byTarget.get(t).values()];
      const med = median(vals);
      rows.push({
        scenario: metric.scenario,
        metric: metric.key,
        name: metric.name,
        unit: metric.unit,
        better: metric.better,
        digits: metric.digits,
        target: t,
        reps: vals.length,
        median: med,
        min: Math.min(...vals),
        max: Math.max(...vals),
        spread: med ? (Math.max(...vals) - Math.min(...vals)) / Math.abs(med) : NaN,
        vsDirect: t === 'direct' ? null : ratio(byTarget, t, 'direct'),
        vsHaproxy: t === 'haproxy' ? null : ratio(byTarget, t, 'haproxy'),
        vsHaproxyBig: t === 'haproxy-big' ? null : ratio(byTarget, t, 'haproxy-big'),
        vsNginx: t === 'nginx' ? null : ratio(byTarget, t, 'nginx'),
        vsLegacy: t === 'legacy' ? null : ratio(byTarget, t, 'legacy'),
      });
    }
  }
  return rows;
}

export function mainTable(rows) {
  const lines = ['| scenario: figure (unit, better) | target | median | min–max (spread) | ÷ direct | ÷ HAProxy | ÷ legacy |', '|---|---|---:|---:|---:|---:|---:|'];
  let last = '';
  for (const r of rows) {
    const head = `${r.name} (${r.unit}, ${r.better === 'higher' ? '↑' : '↓'})`;
    const title = head === last ? '' : `**${head}**`;
    last = head;
    const spread = Number.isFinite(r.spread) && r.reps > 1 ? ` (${(r.spread * 100).toFixed(0)}%)` : '';
    const range = r.reps > 1 ? `${fmt(r.min, r.digits)}–${fmt(r.max, r.digits)}${spread}` : '';
    const same = (t) => (r.target === t ? '1' : null);
    lines.push(
      `| ${title} | ${TARGET_LABEL[r.target] ?? r.target} | ${fmt(r.median, r.digits)} | ${range} | ${same('direct') ?? fmtRatio(r.vsDirect)} | ${same('haproxy') ?? fmtRatio(r.vsHaproxy)} | ${same('legacy') ?? fmtRatio(r.vsLegacy)} |`,
    );
  }
  return lines.join('\n');
}

const COST_UNIT = {
  bulk1: ['ms CPU per GB', (c, m) => (c / 100 / (m.gbps / 8)) * 1000],
  bulk4: ['ms CPU per GB', (c, m) => (c / 100 / (m.gbps / 8)) * 1000],
  download: ['ms CPU per GB', (c, m) => (c / 100 / (m.gbps / 8)) * 1000],
  keepalive: ['µs CPU per request', (c, m) => ((c / 100) * 1e6) / m.rps],
  newconn: ['µs CPU per connection', (c, m) => ((c / 100) * 1e6) / m.cps],
  udp: ['µs CPU per round trip', (c, m) => ((c / 100) * 1e6) / m.rtps],
};

/** What each target spent during the load scenarios (process group CPU and peak RSS). */
export function costTable(runs) {
  const lines = ['| scenario | target | CPU % (usr/sys), 100 = one core | CPU per unit of work | peak RSS MiB |', '|---|---|---:|---:|---:|'];
  const scenarios = [...new Set(runs.filter((r) => r.cost).map((r) => r.scenario))];
  for (const sc of scenarios) {
    const [unit, per] = COST_UNIT[sc] ?? ['', () => NaN];
    const targets = [...new Set(runs.filter((r) => r.scenario === sc && r.cost).map((r) => r.target))].sort((a, b) => TARGET_ORDER.indexOf(a) - TARGET_ORDER.indexOf(b));
    let first = true;
    for (const t of targets) {
      const rs = runs.filter((r) => r.scenario === sc && r.target === t && r.ok && r.cost);
      const cpu = median(rs.map((r) => r.cost.cpuPct));
      const usr = median(rs.map((r) => r.cost.usrPct));
      const sys = median(rs.map((r) => r.cost.sysPct));
      const unitCost = median(rs.map((r) => per(r.cost.cpuPct, r.metrics)));
      const rss = Math.max(...rs.map((r) => r.cost.peakRssMiB));
      lines.push(`| ${first ? sc : ''} | ${TARGET_LABEL[t]} | ${fmt(cpu, 0)} (${fmt(usr, 0)}/${fmt(sys, 0)}) | ${fmt(unitCost, unitCost < 100 ? 1 : 0)} ${unit} | ${fmt(rss, 0)} |`);
      first = false;
    }
  }
  return lines.join('\n');
}

/** The issue's targets for the proxy, each checked against what was measured. */
export function goals(rows, opts) {
  // One set per configuration of the proxy that was measured (one process, and --workers).
  const measured = ['proxy', 'proxy-workers'].filter((t) => rows.some((r) => r.target === t));
  return measured.flatMap((t) => goalsFor(rows, t, measured.length > 1 ? `${TARGET_LABEL[t].replace('kube-userspace-proxy', '').trim() || 'one process'}: ` : '', opts));
}

function goalsFor(rows, target, prefix, { fdHard, checkpoint, services }) {
  const row = (scenario, metric) => rows.find((r) => r.scenario === scenario && r.metric === metric && r.target === target);
  const out = [];
  const add = (goal, measured, want, pass, note = '') => out.push({ goal: `${prefix}${goal}`, measured, want, status: pass === null ? 'n/a' : pass ? 'pass' : 'FAIL', note });
  const cmpRatio = (r, key, op, limit) => {
    const x = r?.[key];
    if (!x) return [null, 'not measured'];
    const ok = op === '>=' ? x.median >= limit : x.median <= limit;
    return [ok, `${x.median.toFixed(2)}× (${x.min.toFixed(2)}–${x.max.toFixed(2)})`];
  };
  // Never below the legacy data path, in any figure it was measured on.
  for (const r of rows.filter((r) => r.target === target && r.vsLegacy)) {
    const op = r.better === 'higher' ? '>=' : '<=';
    const [ok, m] = cmpRatio(r, 'vsLegacy', op, 1);
    add(`not worse than legacy: ${r.name}`, `${m} legacy`, `${op} 1.00×`, ok);
  }
  for (const sc of ['bulk1', 'bulk4']) {
    const r = row(sc, 'gbps');
    const name = METRICS.find((m) => m.scenario === sc).name;
    const [a, ma] = cmpRatio(r, 'vsHaproxy', '>=', 1.0);
    add(`${name} vs HAProxy default buffers`, ma, '>= 1.00×', a);
    const [b, mb] = cmpRatio(r, 'vsHaproxyBig', '>=', 0.95);
    add(`${name} vs HAProxy tune.bufsize 262144`, mb, '>= 0.95×', b);
  }
  {
    const [a, ma] = cmpRatio(row('keepalive', 'rps'), 'vsHaproxy', '>=', 1.0);
    add('keep-alive req/s vs HAProxy', ma, '>= 1.00×', a);
    const [b, mb] = cmpRatio(row('keepalive', 'p99_ms'), 'vsHaproxy', '<=', 1.5);
    add("keep-alive p99 vs HAProxy's", mb, '<= 1.50×', b);
    const [c, mc] = cmpRatio(row('newconn', 'cps'), 'vsHaproxy', '>=', 0.75);
    add('new connections/s vs HAProxy', mc, '>= 0.75×', c);
    const [d, md] = cmpRatio(row('udp', 'rtps'), 'vsNginx', '>=', 1.0);
    add('UDP round trips/s vs nginx', md, '>= 1.00×', d);
  }
  {
    const r = row('memory', 'bytes_per_conn');
    const kib = r ? r.median / 1024 : NaN;
    add('RSS per idle proxied connection', r ? `${kib.toFixed(1)} KiB (at ${checkpoint.toLocaleString('en-US')} connections)` : 'not measured', '<= 10 KiB', r ? kib <= 10 : null);
    const h = row('memory', 'max_held');
    const note =
      target === 'proxy' && fdHard < 2 * 50_000 + 100
        ? `this machine's hard descriptor limit is ${fdHard} per process (it cannot be raised here), so one process can proxy at most about ${Math.floor((fdHard - 50) / 2).toLocaleString('en-US')} connections`
        : '';
    add('concurrent connections held', h ? Math.round(h.median).toLocaleString('en-US') : 'not measured', '>= 50,000', h ? h.median >= 50_000 : null, note);
  }
  {
    // Start-up with many service ports; "not worse than legacy" above covers time and RSS against it.
    const n = services.toLocaleString('en-US');
    const range = (r, scale, digits, unit) => `${(r.median / scale).toFixed(digits)} ${unit} (${(r.min / scale).toFixed(digits)}–${(r.max / scale).toFixed(digits)})`;
    const s = row('startup', 'ready_ms');
    add(`${n} service ports listening after start`, s ? range(s, 1000, 2, 's') : 'not measured', '<= 1 s', s ? s.median <= 1000 : null);
    const m = row('startup', 'rss_mib');
    add(`RSS with ${n} service ports open`, m ? range(m, 1, 1, 'MiB') : 'not measured', '<= 64 MiB', m ? m.median <= 64 : null);
    const a = row('startup', 'add_one_ms');
    add(`one more service (manifest written) → listening, with ${n} in place`, a ? range(a, 1, 0, 'ms') : 'not measured', '<= 20 ms', a ? a.median <= 20 : null);
    const k = row('apiadd', 'api_add_one_ms');
    add(`one more service (API watch event) → listening, with ${n} in place`, k ? range(k, 1, 0, 'ms') : 'not measured', '<= 20 ms', k ? k.median <= 20 : null);
  }
  return out;
}

export function goalsTable(list) {
  const lines = ['| goal (kube-userspace-proxy) | measured | wanted | status |', '|---|---:|---:|---|'];
  for (const g of list) lines.push(`| ${g.goal} | ${g.measured} | ${g.want} | ${g.status}${g.note ? ` — ${g.note}` : ''} |`);
  return lines.join('\n');
}
