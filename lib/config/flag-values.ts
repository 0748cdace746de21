/**
 * Settings on their way to a Config: the text of each flag's value(s), and where it came from,
 * so that a problem names the command-line flag or the config file field the user wrote.
 */
export interface FlagValue {
  readonly values: readonly string[];
  /** `--udp-timeout`, or `--config FILE: iptables.syncPeriod`: what a problem with it names. */
  readonly source: string;
}

/** Flag name (the canonical one, not an alias) → its value. */
export type FlagValues = Map<string, FlagValue>;

/** A setting that is accepted but does not act here; logged once at start, one line each. */
export interface SettingWarning {
  /** The flag or config file field, as `source` above. */
  readonly setting: string;
  readonly reason: string;
}

/** Groups of flags that choose one thing: a command line setting one member replaces the file's whole group. */
const ONE_CHOICE: ReadonlyArray<readonly string[]> = [
  ['manifests', 'kubeconfig', 'master'],
  ['v', 'log-level'],
];

/**
 * The command line over a config file: each flag given on the command line replaces the file's
 * value. Within a group of alternatives (--manifests or an API server; -v or --log-level) the
 * command line's choice replaces the file's, so `--manifests` works next to a kubeadm file that
 * names a kubeconfig.
 */
export function overlay(file: FlagValues, commandLine: FlagValues): FlagValues {
  const out: FlagValues = new Map(file);
  for (const group of ONE_CHOICE) {
    if (group.some((name) => commandLine.has(name))) for (const name of group) out.delete(name);
  }
  for (const [name, value] of commandLine) out.set(name, value);
  return out;
}
