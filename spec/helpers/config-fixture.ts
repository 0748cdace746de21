import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { parseFlags } from '../../lib/config/flags.js';
import type { ParsedFlags } from '../../lib/config/flags.js';
import { ROOT } from './process.js';

export const KUBEADM_EXAMPLE = path.join(ROOT, 'examples', 'kubernetes', 'kube-proxy-config.kubeadm.yaml');

/** Writes `text` to a fresh file removed at the end of the test; returns its path. */
export async function configFile(t: { teardown(fn: () => Promise<void>): void }, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kup-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, text);
  return file;
}

/** The kubeadm example with some fields changed (dotted paths), as YAML text. */
export async function kubeadmWith(changes: Record<string, unknown>): Promise<string> {
  const doc = YAML.parse(await readFile(KUBEADM_EXAMPLE, 'utf8')) as Record<string, unknown>;
  for (const [dotted, value] of Object.entries(changes)) {
    const keys = dotted.split('.');
    let at = doc;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = value;
  }
  return YAML.stringify(doc);
}

export function run(argv: string[]): Extract<ParsedFlags, { action: 'run' }> {
  const parsed = parseFlags(argv);
  if (parsed.action !== 'run') throw new Error(`expected run, got ${parsed.action}`);
  return parsed;
}
