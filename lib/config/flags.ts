import { InvalidConfigError } from '../errors.js';
import { parseArgv } from './argv.js';
import { buildConfig } from './build-config.js';
import { readConfigFile } from './config-file.js';
import type { Config } from './config.js';
import { FLAGS } from './flag-table.js';
import { overlay } from './flag-values.js';
import type { SettingWarning } from './flag-values.js';
import { helpColumns } from './help-columns.js';

export { FLAGS } from './flag-table.js';

export type ParsedFlags =
  | { readonly action: 'help' }
  | { readonly action: 'version' }
  | { readonly action: 'write-config'; readonly config: Config; readonly file: string; readonly warnings: readonly SettingWarning[] }
  | { readonly action: 'run'; readonly config: Config; readonly warnings: readonly SettingWarning[] };

/**
 * Turns argv (without node and the script) and the --config file into a frozen Config. Reports
 * every problem at once in an InvalidConfigError, so a user fixes a command line in one go;
 * settings that are accepted but do not act here come back as warnings, for the caller to log.
 */
export function parseFlags(argv: readonly string[], env: { isTTY: boolean } = { isTTY: false }): ParsedFlags {
  const { values: commandLine, problems } = parseArgv(argv);
  const one = (name: string): string | undefined => commandLine.get(name)?.values[0];
  if (one('help') === 'true') return { action: 'help' };
  if (one('version') === 'true') return { action: 'version' };
  const warnings: SettingWarning[] = [];
  let values = commandLine;
  const configFile = one('config');
  if (configFile !== undefined) {
    const file = readConfigFile(configFile);
    problems.push(...file.problems);
    warnings.push(...file.warnings);
    values = overlay(file.values, commandLine);
  }
  const { config, problems: invalid } = buildConfig(values, env);
  problems.push(...invalid);
  if (problems.length > 0 || !config) throw new InvalidConfigError(problems);
  const writeTo = one('write-config-to');
  if (writeTo !== undefined) return { action: 'write-config', config, file: writeTo, warnings };
  return { action: 'run', config, warnings };
}

/** The --help text, generated from FLAGS so it cannot drift from what is parsed. */
export function usage(program: string): string {
  const lines = [
    `Usage: ${program} --manifests PATH [flags]`,
    `       ${program} [--kubeconfig PATH | --master URL] [--context NAME] [flags]`,
    `       ${program} local (--manifests PATH | [--kubeconfig PATH] [--context NAME]) [flags]`,
    `       ${program} --cleanup | --dry-run --manifests PATH --redirect iptables|nftables`,
    `       ${program} status [--metrics-address HOST:PORT] [--output text|json]`,
    '',
    'Flags:',
  ];
  const rows = FLAGS.map((f) => {
    const short = f.name === 'help' ? '-h, ' : f.name === 'v' ? '-v, ' : '';
    const left = `  ${short}--${f.name}${f.value ? `${f.kind === 'optional' ? '' : ' '}${f.value}` : ''}`;
    // The default stays on one line with its value.
    const def = f.def !== undefined ? ` (default\u00a0${f.def.replaceAll(' ', '\u00a0')})` : '';
    return [left, f.help + def] as const;
  });
  return [...lines, ...helpColumns(rows)].join('\n');
}
