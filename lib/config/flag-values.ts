/**
 * Settings on their way to a Config: the text of each flag's value(s), and where it came from,
 * so that a problem names the command-line flag or the config file field the user wrote.
 */
export interface FlagValue {
  readonly values: readonly string[];
  /** `--udp-timeout`, or `--config FILE: iptables.syncPeriod`: what a problem with it names. */
  readonly source: string;
  /** Not written in the file but implied by kube-proxy's defaulting: a value given elsewhere in the file wins. */
  readonly implied?: boolean;
}

/** Flag name (the canonical one, not an alias) → its value. */
export type FlagValues = Map<string, FlagValue>;

/** A setting that is accepted but does not act here; logged once at start, one line each. */
export interface SettingWarning {
  /** The flag or config file field, as `source` above. */
  readonly setting: string;
  readonly reason: string;
}

/** Alternatives: flags on one side exclude those on the other (a source; a way to set the log level). */
const ALTERNATIVES: ReadonlyArray<readonly [readonly string[], readonly string[]]> = [
  [['manifests'], ['kubeconfig', 'master', 'context']],
  [['v'], ['log-level']],
];

/**
 * The command line over a config file: each flag given on the command line replaces the file's
 * value, and one side of a pair of alternatives on the command line replaces the file's other
 * side, so `--manifests` works next to a kubeadm file that names a kubeconfig (while `--master`
 * next to it still uses that kubeconfig, as with kube-proxy).
 */
export function overlay(file: FlagValues, commandLine: FlagValues): FlagValues {
  const out: FlagValues = new Map(file);
  for (const [a, b] of ALTERNATIVES) {
    if (a.some((name) => commandLine.has(name))) for (const name of b) out.delete(name);
    if (b.some((name) => commandLine.has(name))) for (const name of a) out.delete(name);
  }
  for (const [name, value] of commandLine) out.set(name, value);
  return out;
}
