import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { ROOT } from './helpers/process.js';

/**
 * The folders of lib/ from the bottom up. A file may import from its own layer and the layers below
 * it, never from a layer above. The README's Layout section describes the same order.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors', 'net'],
  ['log', 'internals'],
  ['model', 'config'],
  ['balancer'],
  ['proxy'],
  ['source', 'rules', 'names'],
  ['dns'],
  ['server', 'agent'],
  ['workers'],
  ['cli'],
  ['bin'],
];

const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((name) => [name, i] as const)));

interface Import {
  readonly from: string;
  readonly to: string;
  /** `import type` / `export type`: erased when compiled, so it cannot take part in a load-order cycle. */
  readonly typeOnly: boolean;
}

/** Every relative import and re-export in the .ts files under dir, with paths relative to ROOT. */
function importsUnder(dir: string): Import[] {
  const found: Import[] = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.ts')) continue;
    const from = path.join(dir, entry);
    const text = fs.readFileSync(path.join(ROOT, from), 'utf8');
    const statements = /^(?:import|export)\b(\s+type\b)?[^;]*?\bfrom\s*'(\.{1,2}\/[^']+)'|\bimport\s*\(\s*'(\.{1,2}\/[^']+)'/gm;
    for (const m of text.matchAll(statements)) {
      const target = m[2] ?? m[3]!;
      found.push({ from, to: path.join(path.dirname(from), target).replace(/\.js$/, '.ts'), typeOnly: m[1] !== undefined });
    }
  }
  return found;
}

/** The part a file belongs to: its folder under lib/, `log` or `errors` for the files at lib/'s top, or `bin`. */
function partOf(file: string): string {
  const [top, second, third] = file.split(path.sep);
  if (top === 'bin') return 'bin';
  return third === undefined ? second!.replace(/\.ts$/, '') : second!;
}

const imports = [...importsUnder('lib'), ...importsUnder('bin')];

test('the scan finds the imports of lib/ and bin/', (t) => {
  t.true(imports.length > 300, `only ${imports.length} imports found`);
  t.true(imports.some((i) => i.from === path.join('lib', 'config', 'build-config.ts') && i.to === path.join('lib', 'net', 'parse-address.ts') && !i.typeOnly));
  t.true(imports.some((i) => i.from === path.join('lib', 'server', 'agent-view.ts') && i.to === path.join('lib', 'agent', 'agent.ts') && i.typeOnly));
});

test('every part of lib/ has a declared layer', (t) => {
  const unknown = [...new Set(imports.flatMap((i) => [partOf(i.from), partOf(i.to)]))].filter((p) => !layerOf.has(p));
  t.deepEqual(unknown, [], `add ${unknown.join(', ')} to LAYERS and to the README's Layout section`);
});

test('no import runs upward against the declared layers', (t) => {
  const upward = imports
    .filter((i) => (layerOf.get(partOf(i.to)) ?? -1) > (layerOf.get(partOf(i.from)) ?? Infinity))
    .map((i) => `${i.from} imports ${i.to} (${partOf(i.from)} is below ${partOf(i.to)})`);
  t.deepEqual(upward, []);
});

test('no file loads itself through other files', (t) => {
  const graph = new Map<string, string[]>();
  for (const { from, to } of imports.filter((i) => !i.typeOnly)) graph.set(from, [...(graph.get(from) ?? []), to]);
  const done = new Set<string>();
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]): void => {
    const at = trail.indexOf(file);
    if (at >= 0) {
      cycles.push([...trail.slice(at), file].join(' -> '));
      return;
    }
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
    done.add(file);
  };
  for (const file of graph.keys()) visit(file, []);
  t.deepEqual(cycles, []);
});
