import { readFile, writeFile } from 'node:fs/promises';

/**
 * Sets this process's oom_score_adj, as kube-proxy does for itself at start. Worker processes
 * started later inherit it. Lowering it below the current value needs CAP_SYS_RESOURCE, so this
 * can fail without root; returns the error then (the caller logs it), never throws.
 */
export async function applyOomScoreAdj(value: number, file = '/proc/self/oom_score_adj'): Promise<Error | undefined> {
  try {
    if (Number((await readFile(file, 'utf8')).trim()) === value) return undefined;
    await writeFile(file, `${value}\n`);
    return undefined;
  } catch (err) {
    return err as Error;
  }
}
