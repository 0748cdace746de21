// Summarizes a V8 .cpuprofile (node --cpu-prof): self time per function, and per "where"
// (this project's code, Node's internals, other packages, V8/GC/program), as shares of the time
// the process was not idle.
// usage: node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [N=30]
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export function topOfProfile(file, n = 30) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i];
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const perFn = new Map();
  const perWhere = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const url = cf.url.replace(/^file:\/\//, '');
    const short = url ? `${url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}` : '';
    const key = `${name} ${short}`.trim();
    perFn.set(key, (perFn.get(key) ?? 0) + us);
    const where = !url
      ? name.startsWith('(')
        ? name
        : 'native / V8 builtins'
      : url.startsWith('node:')
        ? 'Node internals (node:*)'
        : url.includes('/node_modules/')
          ? 'packages (node_modules)'
          : 'this project (dist/)';
    perWhere.set(where, (perWhere.get(where) ?? 0) + us);
  }
  const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5);
  const lines = [`profile ${file}`, `busy ${(total / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s`, '', 'self time by where:'];
  for (const [k, us] of [...perWhere].sort((a, b) => b[1] - a[1])) lines.push(`  ${pct(us)} %  ${k}`);
  lines.push('', `top ${n} functions by self time (% of busy):`);
  for (const [k, us] of [...perFn].sort((a, b) => b[1] - a[1]).slice(0, n)) lines.push(`  ${pct(us)} %  ${k}`);
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!process.argv[2]) {
    process.stderr.write('usage: node bench/lib/cpuprofile-top.mjs FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  process.stdout.write(`${topOfProfile(process.argv[2], Number(process.argv[3] ?? 30))}\n`);
}
