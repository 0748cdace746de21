import type { FlagSpec } from './flag-table.js';
import { FLAGS } from './flag-table.js';
import type { FlagValues } from './flag-values.js';
import { nearestName } from './nearest-name.js';

/**
 * Splits argv (without node and the script) into flag values, without judging them: `--name
 * VALUE`, `--name=VALUE`, bare booleans, `--flag[=VALUE]` for optional values, klog's `-v N`, `-h`
 * for `--help`, and kube-proxy's spellings of flags this proxy names differently (stored under this proxy's name).
 */
export function parseArgv(argv: readonly string[]): { values: FlagValues; problems: string[] } {
  const problems: string[] = [];
  const values: FlagValues = new Map();
  const byName = new Map<string, FlagSpec>(FLAGS.map((f) => [f.name, f]));
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    // klog's short form, which kube-proxy users type: -v 4, -v=4.
    if (arg === '-v' || arg.startsWith('-v=')) arg = `-${arg}`;
    if (arg === '-h') arg = '--help';
    if (!arg.startsWith('--') || arg === '--') {
      // Go's flag package, and so kube-proxy, takes `-name` too: say which flag that is here.
      const single = /^-([a-z][a-z-]*)(?:=|$)/.exec(arg)?.[1];
      problems.push(single !== undefined && byName.has(single) ? `unexpected argument "${arg}"; did you mean --${single}?` : `unexpected argument "${arg}"`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) {
      const near = nearestName(name, byName.keys());
      problems.push(near === undefined ? `unknown flag --${name}` : `unknown flag --${name}; did you mean --${near}?`);
      // The mistyped flag's value is not a stray argument of its own.
      const kind = near === undefined ? undefined : byName.get(near)!.kind;
      if (eq < 0 && kind !== undefined && kind !== 'bool' && kind !== 'optional' && i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) i++;
      continue;
    }
    let value: string;
    if (spec.kind === 'optional') {
      // Only `--flag=VALUE` carries a value: `--flag VALUE` would be ambiguous with what follows.
      value = eq < 0 ? (spec.implicit ?? '') : arg.slice(eq + 1);
    } else if (spec.kind === 'bool') {
      value = eq < 0 ? 'true' : arg.slice(eq + 1);
      if (value !== 'true' && value !== 'false') {
        problems.push(`--${name}: expected true or false, got "${value}"`);
        continue;
      }
    } else if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      value = argv[++i]!;
    } else {
      problems.push(`--${name} needs a value (${spec.value ?? 'VALUE'})`);
      continue;
    }
    const canonical = spec.aliasOf ?? name;
    const previous = values.get(canonical);
    if (previous && spec.kind !== 'strings') {
      problems.push(previous.source === `--${name}` ? `--${name} given more than once` : `--${name} and ${previous.source} are the same setting: give one`);
      continue;
    }
    values.set(canonical, { values: [...(previous?.values ?? []), value], source: previous?.source ?? `--${name}` });
  }
  return { values, problems };
}
