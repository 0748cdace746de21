import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { CommandResult, CommandRunner } from '../../lib/rules/command-runner.js';
import { netnsRunner, requireSystemBinary, spawnRunner } from '../../lib/rules/command-runner.js';

/**
 * Network namespaces for real-network tests: one namespace with loopback only (createNetns: rules
 * and addresses applied for real), or a topology (createTopology): a "node" running the agent, "pods" and a "client
 * node" wired to it with veth pairs. Everything lives in namespaces this module creates, so the
 * tests never touch the host's interfaces, rules or addresses, and deleting the namespaces
 * removes every veth, address and rule in them.
 *
 * Addresses of one topology, with X = `block` (unique per test):
 *
 *   pod i (1..n)   eth0 10.X.i.2/24, default via 10.X.i.1        node  veth-pI  10.X.i.1/24
 *   client node    eth0 10.X.100.2/24, 10.X.0.0/16 via node      node  veth-cl  10.X.100.1/24
 *   node           default via 10.X.100.2 (its "uplink"), ip_forward=1
 *
 * 10.X.100.1 is the node's host IP (the address of its default-route interface, where NodePorts
 * are reached); 10.X.200-255.* are free for Service IPs: routed to the node from pods (default
 * route) and from the client node (the /16 route).
 *
 * With `ipv6: true` every link has an IPv6 address as well, fd00:X:a::b for 10.X.a.b (`addr6`),
 * routed the same way (the client node's route is fd00:X::/32); fd00:X:200:: and above are free
 * for Service IPs.
 */

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string;
  /** Killed (SIGKILL) after this long; the result then has code -1. Default 10 s. */
  readonly timeoutMs?: number;
}

/** A process started in a namespace; killed (SIGKILL) in teardown unless it has exited. */
export interface NetnsProcess {
  readonly child: ChildProcess;
  readonly ns: string;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

export interface Pod {
  /** The pod's name, also its namespace's suffix. */
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  /** The node side of the pod's veth (its default gateway). */
  readonly gateway: string;
  /** The pod's IPv6 address, with `ipv6: true`. */
  readonly ip6?: string;
}

export interface Topology {
  readonly block: number;
  readonly node: string;
  readonly client: string;
  readonly pods: readonly Pod[];
  /** The node's host IP (the node side of the client link, the node's default-route interface). */
  readonly nodeIP: string;
  readonly clientIP: string;
  /** The node's and the client node's IPv6 addresses, with `ipv6: true`. */
  readonly nodeIP6?: string;
  readonly clientIP6?: string;
  /** `10.X.a.b` for this topology's block. */
  addr(a: number, b: number): string;
  /** `fd00:X:a::b` for this topology's block (assigned only with `ipv6: true`). */
  addr6(a: number, b: number): string;
  /** Runs argv in a namespace; never throws for a failing command (see `code`). */
  exec(ns: string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** As exec, but throws with the command's stderr when it fails. */
  run(ns: string, argv: readonly string[], options?: ExecOptions): Promise<string>;
  /**
   * Starts a long-running process in a namespace, with `env` or this process's environment
   * (PATH included as it is: the agent runs as `npm test` or `npx` would run it).
   */
  spawn(ns: string, argv: readonly string[], env?: NodeJS.ProcessEnv): NetnsProcess;
  /** Starts a node script in a namespace with this Node.js binary. */
  spawnNode(ns: string, args: readonly string[], env?: NodeJS.ProcessEnv): NetnsProcess;
  /** Kills every process started here, then deletes every namespace; reports all failures at once. Idempotent. */
  teardown(): Promise<void>;
}

export interface TopologyOptions {
  /** Second octet of every address of this topology, 1-254; unique per test. */
  readonly block: number;
  /** Number of pod namespaces, 1-99. Default 3. */
  readonly pods?: number;
  /** IPv6 addresses and routes beside the IPv4 ones (dual-stack). Default false. */
  readonly ipv6?: boolean;
}

const EXEC_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 5_000;

/**
 * PATH without node_modules/.bin directories. npm and npx put those first, and ava depends on
 * @vercel/nft, whose `nft` binary would otherwise shadow the nftables tool.
 */
export const SYSTEM_PATH = (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin')
  .split(':')
  .filter((dir) => dir !== '' && !dir.split('/').includes('node_modules'))
  .join(':');

/** Runs a command (outside any namespace) with SYSTEM_PATH; never throws. */
export function execCommand(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, PATH: SYSTEM_PATH }, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs ?? EXEC_TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? EXEC_TIMEOUT_MS);
    const done = (code: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    };
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      stderr += err.message;
      done(-1);
    });
    child.on('close', (code) => done(code ?? -1));
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

async function runCommand(argv: readonly string[], options?: ExecOptions): Promise<string> {
  const r = await execCommand(argv, options);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (code ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * Whether namespace tests can run here: root, a working `ip netns`, and the tools the tests use.
 * Returns the reason when they cannot.
 */
export async function netnsSupport(tools: readonly string[] = []): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, reason: 'not running as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)' };
  for (const tool of ['ip', ...tools]) {
    const r = await execCommand(['sh', '-c', `command -v ${tool}`]);
    if (r.code !== 0) return { ok: false, reason: `${tool} is not installed` };
  }
  const probe = `kup-probe-${randomBytes(3).toString('hex')}`;
  const add = await execCommand(['ip', 'netns', 'add', probe]);
  if (add.code !== 0) return { ok: false, reason: `ip netns add does not work: ${add.stderr.trim()}` };
  const up = await execCommand(['ip', 'netns', 'exec', probe, 'ip', 'link', 'set', 'lo', 'up']);
  const del = await execCommand(['ip', 'netns', 'del', probe]);
  if (up.code !== 0) return { ok: false, reason: `ip netns exec does not work: ${up.stderr.trim()}` };
  if (del.code !== 0) return { ok: false, reason: `ip netns del does not work: ${del.stderr.trim()}` };
  return { ok: true };
}

/**
 * `test` where namespace tests can run (see netnsSupport), or with CI=true, where they must run and
 * each fails on what is missing; elsewhere `test.skip`, so that they are reported as skipped, never
 * as passed. Decided before the tests are declared; the reason is printed once.
 */
export function netnsTestIf(support: { ok: true } | { ok: false; reason: string }, what = 'network namespace tests'): typeof test | typeof test.skip {
  if (support.ok || process.env['CI'] === 'true') return test;
  console.warn(`skipping the ${what}: ${support.reason} (with CI=true they run, and fail)`);
  return test.skip;
}

/**
 * A throwaway network namespace per test, so that rules are applied for real without touching the
 * host's firewall. Removed in teardown even when the test fails; deleting the namespace removes every
 * rule, table, address and interface in it.
 */
export interface Netns {
  readonly name: string;
  readonly runner: CommandRunner;
  /** Runs a system binary (by name) in the namespace; throws unless it exits 0. */
  sh(name: string, ...args: string[]): Promise<string>;
  /** Like sh, but returns the whole result. */
  try(name: string, args: readonly string[], stdin?: string): Promise<CommandResult>;
}

export async function createNetns(t: ExecutionContext): Promise<Netns> {
  const name = `kup-ns-${randomBytes(4).toString('hex')}`;
  const host = spawnRunner();
  const ip = await requireSystemBinary('ip');
  const added = await host([ip, 'netns', 'add', name]);
  if (added.code !== 0) throw new Error(`ip netns add ${name} failed: ${added.stderr}`);
  t.teardown(async () => {
    const deleted = await host([ip, 'netns', 'del', name]);
    if (deleted.code !== 0) t.log(`ip netns del ${name} failed: ${deleted.stderr}`);
  });
  const runner = await netnsRunner(name, { timeoutMs: 30_000 });
  const tryRun = async (bin: string, args: readonly string[], stdin?: string): Promise<CommandResult> => runner([bin.startsWith('/') ? bin : await requireSystemBinary(bin), ...args], stdin);
  const sh = async (bin: string, ...args: string[]): Promise<string> => {
    const result = await tryRun(bin, args);
    if (result.code !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };
  await sh('ip', 'link', 'set', 'lo', 'up');
  return { name, runner, sh, try: tryRun };
}

/** A temporary directory removed in teardown. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(`${tmpdir()}/kup-spec-`);
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Builds a node, `pods` pod namespaces and a client node (see the module comment for the
 * addresses). Teardown is registered with t.teardown before anything is created, so a failure
 * half-way still removes what exists.
 */
export async function createTopology(t: ExecutionContext, options: TopologyOptions): Promise<Topology> {
  const { block } = options;
  const podCount = options.pods ?? 3;
  if (!Number.isInteger(block) || block < 1 || block > 254) throw new Error(`bad topology block ${block}`);
  if (!Number.isInteger(podCount) || podCount < 1 || podCount > 99) throw new Error(`bad pod count ${podCount}`);
  // Namespace names are global to the machine: a random suffix keeps parallel tests (and
  // leftovers of an earlier, killed run) apart. Interface names only need to be unique inside
  // their own namespace, so they are short and fixed.
  const suffix = randomBytes(3).toString('hex');
  const addr = (a: number, b: number): string => `10.${block}.${a}.${b}`;
  const addr6 = (a: number, b: number): string => `fd00:${block}:${a}::${b}`;
  const ipv6 = options.ipv6 === true;
  const node = `kup-${suffix}-node`;
  const client = `kup-${suffix}-client`;
  const pods: Pod[] = Array.from({ length: podCount }, (_, i) => ({
    name: `pod-${i + 1}`,
    ns: `kup-${suffix}-pod-${i + 1}`,
    ip: addr(i + 1, 2),
    gateway: addr(i + 1, 1),
    ...(ipv6 ? { ip6: addr6(i + 1, 2) } : {}),
  }));
  const nodeIP = addr(100, 1);
  const clientIP = addr(100, 2);

  const created: string[] = [];
  const processes = new Set<NetnsProcess>();
  let tornDown: Promise<void> | undefined;

  const exec = (ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> => execCommand(['ip', 'netns', 'exec', ns, ...argv], opts);
  const run = (ns: string, argv: readonly string[], opts?: ExecOptions): Promise<string> => runCommand(['ip', 'netns', 'exec', ns, ...argv], opts);

  const spawnIn = (ns: string, argv: readonly string[], env?: NodeJS.ProcessEnv): NetnsProcess => {
    if (tornDown) throw new Error('topology already torn down');
    // `ip netns exec` enters the namespace and execs argv[0]: the child's pid is the program's.
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let exitedFlag = false;
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | string>((resolve) => {
      child.on('error', (e) => {
        err += e.message;
        exitedFlag = true;
        resolve(-1);
      });
      child.on('exit', (code, signal) => {
        exitedFlag = true;
        resolve(code ?? signal ?? -1);
      });
    });
    const p: NetnsProcess = { child, ns, stdout: () => out, stderr: () => err, exited, hasExited: () => exitedFlag };
    processes.add(p);
    return p;
  };

  const teardown = (): Promise<void> => {
    tornDown ??= (async () => {
      const failures: string[] = [];
      // Processes first: a namespace with a process still in it outlives `ip netns del`.
      await Promise.all(
        [...processes].map(async (p) => {
          if (p.hasExited()) return;
          p.child.kill('SIGKILL');
          const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), KILL_WAIT_MS).unref());
          if ((await Promise.race([p.exited, timeout])) === 'timeout') failures.push(`process ${p.child.pid} in ${p.ns} did not exit after SIGKILL`);
        }),
      );
      for (const ns of created.reverse()) {
        const r = await execCommand(['ip', 'netns', 'del', ns]);
        if (r.code !== 0) failures.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
      }
      if (failures.length > 0) throw new Error(`topology teardown: ${failures.join('; ')}`);
    })();
    return tornDown;
  };
  t.teardown(teardown);

  const addNs = async (ns: string): Promise<void> => {
    await runCommand(['ip', 'netns', 'add', ns]);
    created.push(ns);
    await run(ns, ['ip', 'link', 'set', 'lo', 'up']);
  };
  /** A veth pair created directly in its two namespaces (never in the host's). */
  const link = async (nodeIf: string, nodeAddr: string, otherNs: string, otherAddr: string): Promise<void> => {
    await runCommand(['ip', '-n', node, 'link', 'add', nodeIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', otherNs]);
    await runCommand(['ip', '-n', node, 'addr', 'add', `${nodeAddr}/24`, 'dev', nodeIf]);
    await runCommand(['ip', '-n', otherNs, 'addr', 'add', `${otherAddr}/24`, 'dev', 'eth0']);
    if (ipv6) {
      // nodad: usable at once, without waiting for duplicate address detection.
      const [a, b] = nodeAddr.split('.').slice(2).map(Number) as [number, number];
      const [c, d] = otherAddr.split('.').slice(2).map(Number) as [number, number];
      await runCommand(['ip', '-n', node, 'addr', 'add', `${addr6(a, b)}/64`, 'dev', nodeIf, 'nodad']);
      await runCommand(['ip', '-n', otherNs, 'addr', 'add', `${addr6(c, d)}/64`, 'dev', 'eth0', 'nodad']);
    }
    await runCommand(['ip', '-n', node, 'link', 'set', nodeIf, 'up']);
    await runCommand(['ip', '-n', otherNs, 'link', 'set', 'eth0', 'up']);
  };

  await addNs(node);
  await addNs(client);
  for (const pod of pods) await addNs(pod.ns);
  await run(node, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (ipv6) await run(node, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  for (const [i, pod] of pods.entries()) {
    await link(`veth-p${i + 1}`, pod.gateway, pod.ns, pod.ip);
    await runCommand(['ip', '-n', pod.ns, 'route', 'add', 'default', 'via', pod.gateway]);
    if (ipv6) await runCommand(['ip', '-n', pod.ns, '-6', 'route', 'add', 'default', 'via', addr6(i + 1, 1)]);
  }
  await link('veth-cl', nodeIP, client, clientIP);
  await runCommand(['ip', '-n', client, 'route', 'add', `10.${block}.0.0/16`, 'via', nodeIP]);
  await runCommand(['ip', '-n', node, 'route', 'add', 'default', 'via', clientIP]);
  if (ipv6) {
    await runCommand(['ip', '-n', client, '-6', 'route', 'add', `fd00:${block}::/32`, 'via', addr6(100, 1)]);
    await runCommand(['ip', '-n', node, '-6', 'route', 'add', 'default', 'via', addr6(100, 2)]);
  }

  return {
    block,
    node,
    client,
    pods,
    nodeIP,
    clientIP,
    ...(ipv6 ? { nodeIP6: addr6(100, 1), clientIP6: addr6(100, 2) } : {}),
    addr,
    addr6,
    exec,
    run,
    spawn: spawnIn,
    spawnNode: (ns, args, env) => spawnIn(ns, [process.execPath, ...args], env),
    teardown,
  };
}
