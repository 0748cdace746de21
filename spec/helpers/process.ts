import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The project root (specs run from dist/spec/...). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = `${ROOT}dist/bin/kube-userspace-proxy.js`;

/**
 * How long a spawned agent may take to start serving. Generous on purpose: with the whole suite
 * running on two cores, starting a Node process can take many seconds; a deadline, not a sleep.
 */
export const START_TIMEOUT_MS = 30_000;

export interface Spawned {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited and its output is read. */
  exited: Promise<number | string>;
}

/** Starts a node script the way a user would, capturing its output. */
export function spawnNode(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Spawned {
  const child = spawn(process.execPath, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => {
      // What it wrote last may still be in the pipes at 'exit': wait for them to close too, for at
      // most 2 s (a worker process it started could hold them a little longer).
      const finish = (): void => resolve(code ?? signal ?? -1);
      child.once('close', finish);
      setTimeout(finish, 2000).unref();
    }),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}
