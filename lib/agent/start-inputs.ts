import { accessSync, constants, statSync } from 'node:fs';
import type { Config } from '../config/config.js';
import { KubeConfigError, ManifestError } from '../errors.js';
import type { ProxyError } from '../errors.js';

/**
 * The files a configuration names that must be there before anything starts: every --manifests
 * path, and the --kubeconfig file when the API is the source. One error each, with its code and
 * the message the part that reads the file would give later, so that a start-up failure is logged
 * as one line per cause before any server or listener is opened (and closed again). Addresses are
 * checked earlier, with the flags.
 */
export function checkStartInputs(config: Pick<Config, 'manifests' | 'kubeconfig'>): ProxyError[] {
  const problems: ProxyError[] = [];
  for (const p of config.manifests) {
    const err = failureOf(() => statSync(p));
    if (err) problems.push(new ManifestError(p, `manifest path ${p} ${err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.message})`}`, { cause: err }));
  }
  const file = config.kubeconfig;
  if (config.manifests.length === 0 && file !== undefined) {
    const err = failureOf(() => accessSync(file, constants.R_OK));
    if (err) problems.push(new KubeConfigError(`kubeconfig ${file} ${err.code === 'ENOENT' ? 'does not exist' : `cannot be read (${err.message})`}`, { file, cause: err }));
  }
  return problems;
}

function failureOf(check: () => unknown): NodeJS.ErrnoException | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}
