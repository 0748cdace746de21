import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { FlagValues, SettingWarning } from './flag-values.js';
import { KUBE_PROXY_API_VERSION, KUBE_PROXY_KIND, readKubeProxyConfiguration } from './kube-proxy-configuration.js';
import { PROJECT_API_VERSION, PROJECT_KIND, readProjectConfiguration } from './project-configuration.js';

/**
 * Reads a --config file: a KubeProxyConfiguration (as kubeadm writes it), a
 * KubeUserspaceProxyConfiguration (this project's settings that v1alpha1 has no field for), or
 * both as two YAML documents in any order. Another kind, or one kind twice, is a problem; so is
 * one setting given two different values by the two documents. Returns every problem found,
 * each naming the file and the field, and the warnings for accepted fields that do not act here.
 */
export function readConfigFile(file: string): { values: FlagValues; problems: string[]; warnings: SettingWarning[] } {
  const values: FlagValues = new Map();
  const problems: string[] = [];
  const warnings: SettingWarning[] = [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`--config ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    return { values, problems, warnings };
  }
  // Loaded only with --config: it is a tenth of a second of every start otherwise.
  const docs = (createRequire(import.meta.url)('yaml') as typeof Yaml).parseAllDocuments(text);
  const seen = new Set<string>();
  let number = 0;
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    number++;
    const at = docs.length > 1 ? `--config ${file}: document ${number}` : `--config ${file}`;
    if (doc.errors.length > 0) {
      problems.push(`${at}: ${doc.errors[0]!.message.split('\n')[0]}`);
      continue;
    }
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) continue; // an empty document, as after a trailing ---
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      problems.push(`${at}: expected a ${KUBE_PROXY_KIND} or ${PROJECT_KIND} object`);
      continue;
    }
    const { apiVersion, kind } = obj as Record<string, unknown>;
    let read: { values: FlagValues; problems: string[]; warnings?: SettingWarning[] };
    if (apiVersion === KUBE_PROXY_API_VERSION && kind === KUBE_PROXY_KIND) read = readKubeProxyConfiguration(obj as Record<string, unknown>, file);
    else if (apiVersion === PROJECT_API_VERSION && kind === PROJECT_KIND) read = readProjectConfiguration(obj as Record<string, unknown>, file);
    else {
      problems.push(
        `${at}: unknown kind ${JSON.stringify(kind)} of apiVersion ${JSON.stringify(apiVersion)}; expected ${KUBE_PROXY_API_VERSION} ${KUBE_PROXY_KIND} or ${PROJECT_API_VERSION} ${PROJECT_KIND}`,
      );
      continue;
    }
    if (seen.has(String(kind))) {
      problems.push(`${at}: a second ${String(kind)}; give each kind once`);
      continue;
    }
    seen.add(String(kind));
    problems.push(...read.problems);
    warnings.push(...(read.warnings ?? []));
    for (const [name, value] of read.values) {
      const earlier = values.get(name);
      if (earlier?.implied) values.delete(name);
      else if (value.implied && earlier) continue;
      else if (earlier && earlier.values.join('\n') !== value.values.join('\n')) {
        problems.push(`${earlier.source} and ${value.source} differ (${JSON.stringify(earlier.values.join(','))} and ${JSON.stringify(value.values.join(','))}): set it in one place`);
      }
      values.set(name, value);
    }
  }
  return { values, problems, warnings };
}
