import { fileSettableFlags } from './flag-table.js';
import type { FlagKind } from './flag-table.js';
import type { FlagValues } from './flag-values.js';

export const PROJECT_API_VERSION = 'kube-userspace-proxy/v1alpha1';
export const PROJECT_KIND = 'KubeUserspaceProxyConfiguration';

/**
 * Reads this project's own config document: one field per flag, named as the flag in
 * lowerCamelCase (`udpMaxSessions`, `shutdownGracePeriod`, `assignServiceIPs`), taking what the
 * flag takes. The fields come from the flag table, so every flag, a later one too, has its field.
 * A list sets a repeatable flag several times; a map is written as `k=v,k=v`.
 */
export function readProjectConfiguration(doc: Record<string, unknown>, file: string): { values: FlagValues; problems: string[] } {
  const values: FlagValues = new Map();
  const problems: string[] = [];
  const fields = fileSettableFlags();
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'apiVersion' || key === 'kind') continue;
    const source = `--config ${file}: ${PROJECT_KIND}.${key}`;
    const spec = fields.get(key);
    if (!spec) {
      problems.push(`${source}: not a field of ${PROJECT_API_VERSION} ${PROJECT_KIND} (its fields are the flags in lowerCamelCase)`);
      continue;
    }
    if (value === null || value === undefined) continue;
    const texts = fieldValues(spec.kind, value);
    if (typeof texts === 'string') problems.push(`${source}: ${texts}, got ${JSON.stringify(value)}`);
    else values.set(spec.name, { values: texts, source });
  }
  return { values, problems };
}

/** A field's value as flag values, or what is wrong with it. */
function fieldValues(kind: FlagKind, value: unknown): string[] | string {
  const scalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  if (kind === 'bool') return value === true || value === false || value === 'true' || value === 'false' ? [String(value)] : 'must be true or false';
  if (Array.isArray(value)) {
    if (kind !== 'strings') return 'takes one value, not a list';
    return value.every(scalar) ? value.map(String) : 'must be a list of strings';
  }
  if (typeof value === 'object' && value !== null) {
    return [
      Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `${k}=${String(v ?? '')}`)
        .join(','),
    ];
  }
  return scalar(value) ? [String(value)] : 'must be a value';
}
