/**
 * The command line names manifests (`--manifests PATH` or `--manifests=PATH`, also after `local`),
 * so the first thing the proxy does is parse them. Read before the flags are (see start-early.ts):
 * a --config file that names manifests is found later, and its files are parsed as before, on a
 * thread the first parse starts.
 */
export function argvNamesManifests(argv: readonly string[]): boolean {
  if (argv[0] === 'status') return false;
  return argv.some((arg) => arg === '--manifests' || arg.startsWith('--manifests='));
}
