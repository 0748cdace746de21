import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { RulesError } from '../errors.js';

/**
 * How the rule backends run system commands. Everything that touches the kernel (iptables-restore,
 * nft, ip, conntrack) goes through a `CommandRunner`, so tests and the benchmark can run the very same
 * code inside a network namespace (`netnsRunner`) and count executions (`countingRunner`).
 */

export interface CommandResult {
  /** The exit code; -1 when the command was killed (timeout or signal), 127 when it could not be started. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `argv` (argv[0] an absolute path), writing `stdin` to it when given. Never rejects: failures are in the result. */
export type CommandRunner = (argv: readonly string[], stdin?: string) => Promise<CommandResult>;

/**
 * The directories system binaries are looked up in, in order. Deliberately not $PATH: inside npm
 * scripts `node_modules/.bin` comes first, and it holds an unrelated JavaScript `nft`.
 */
export const SYSTEM_BINARY_DIRS: readonly string[] = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

const resolved = new Map<string, Promise<string | undefined>>();

/** The absolute path of a system binary (first of SYSTEM_BINARY_DIRS holding an executable `name`), or undefined. */
export function resolveSystemBinary(name: string): Promise<string | undefined> {
  let found = resolved.get(name);
  if (!found) {
    found = (async () => {
      for (const dir of SYSTEM_BINARY_DIRS) {
        const path = `${dir}/${name}`;
        try {
          await access(path, constants.X_OK);
          return path;
        } catch {
          // not in this directory
        }
      }
      return undefined;
    })();
    resolved.set(name, found);
  }
  return found;
}

/** Like resolveSystemBinary, but throws a RulesError naming the directories searched. */
export async function requireSystemBinary(name: string): Promise<string> {
  const path = await resolveSystemBinary(name);
  if (!path) throw new RulesError(`${name} not found in ${SYSTEM_BINARY_DIRS.join(', ')}`);
  return path;
}

export interface SpawnRunnerOptions {
  /** Prepended to every argv, e.g. `['/usr/sbin/ip', 'netns', 'exec', 'ns1']`. */
  readonly prefix?: readonly string[];
  /** A command still running after this long is killed (SIGKILL) and reported with code -1. Default 60 s. */
  readonly timeoutMs?: number;
}

/** A runner that spawns each command directly (no shell). */
export function spawnRunner(options: SpawnRunnerOptions = {}): CommandRunner {
  const prefix = options.prefix ?? [];
  const timeoutMs = options.timeoutMs ?? 60_000;
  return (argv, stdin) =>
    new Promise<CommandResult>((resolve) => {
      const full = [...prefix, ...argv];
      const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let settled = false;
      const finish = (code: number, extraErr = ''): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() + extraErr });
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(-1, `\nkilled after ${timeoutMs} ms`);
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) => finish(127, e.message));
      child.on('close', (code) => finish(code ?? -1));
      // A command that exits without reading its stdin gives EPIPE here; its exit code tells the story.
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin ?? '');
    });
}

/** A runner that runs every command inside the named network namespace (`ip netns exec NAME ...`). */
export async function netnsRunner(namespace: string, options: Omit<SpawnRunnerOptions, 'prefix'> = {}): Promise<CommandRunner> {
  const ip = await requireSystemBinary('ip');
  return spawnRunner({ ...options, prefix: [ip, 'netns', 'exec', namespace] });
}

/** Wraps a runner, counting the commands it runs (for the benchmark and for tests). */
export function countingRunner(base: CommandRunner): { runner: CommandRunner; count(): number; reset(): void } {
  let n = 0;
  return {
    runner: (argv, stdin) => {
      n += 1;
      return base(argv, stdin);
    },
    count: () => n,
    reset: () => {
      n = 0;
    },
  };
}

/** Runs a command and throws a RulesError (with the command and its stderr) unless it exits 0. */
export async function runChecked(runner: CommandRunner, argv: readonly string[], stdin?: string, what?: string): Promise<CommandResult> {
  const result = await runner(argv, stdin);
  if (result.code !== 0) throw commandError(argv, result, what);
  return result;
}

/** The RulesError for a failed command: `<what> failed (exit N): <first stderr lines>`. */
export function commandError(argv: readonly string[], result: CommandResult, what?: string): RulesError {
  const detail = result.stderr.trim().split('\n').slice(0, 5).join('; ');
  const name = what ?? argv.join(' ');
  return new RulesError(`${name} failed (exit ${result.code})${detail ? `: ${detail}` : ''}`, {
    command: argv,
    stderr: result.stderr,
  });
}
