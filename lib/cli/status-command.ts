import { Agent as HttpAgent, request } from 'undici';
import { helpColumns } from '../config/help-columns.js';
import { nearestName } from '../config/nearest-name.js';
import { InvalidConfigError } from '../errors.js';
import { DEFAULT_METRICS_BIND_ADDRESS } from '../server/metrics-server.js';
import { parseAddress } from '../net/parse-address.js';
import { formatHostPort } from '../net/host-port.js';
import type { HostPort } from '../net/host-port.js';
import type { StatusDocument } from '../server/status-document.js';
import { formatStatusTable } from './status-table.js';

const PROGRAM = 'kube-userspace-proxy status';

/** How long the agent has to answer, connecting included. */
export const DEFAULT_STATUS_TIMEOUT_MS = 5000;

export type StatusOutput = 'text' | 'json';

export interface StatusArgs {
  readonly address: HostPort;
  readonly output: StatusOutput;
  readonly help: boolean;
}

/** Where runStatus writes; process by default, a capture in tests. */
export interface StatusIO {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

export interface StatusOptions {
  readonly timeoutMs?: number;
}

export function statusUsage(): string {
  return [
    `Usage: ${PROGRAM} [--metrics-address HOST:PORT] [--output text|json]`,
    '',
    "Shows the running agent's service ports, their portals, proxy ports and affinity, and each",
    "endpoint's active and total connections and failed dials, read from the agent's metrics server.",
    '',
    ...helpColumns([
      ['  --metrics-address HOST:PORT', `the agent's --metrics-bind-address (default ${DEFAULT_METRICS_BIND_ADDRESS}); --metrics-bind-address is another name for it`],
      ['  --output, -o text|json', 'a table (default), or the JSON of /status for scripts'],
      ['  --help, -h', 'this help'],
    ]),
  ].join('\n');
}

/** The subcommand's flags, for the nearest-name hint on a mistyped one. */
const STATUS_FLAGS = ['--metrics-address', '--metrics-bind-address', '--output', '--help'];

/** Parses the status subcommand's arguments; throws InvalidConfigError listing every problem. */
export function parseStatusArgs(argv: readonly string[]): StatusArgs {
  const problems: string[] = [];
  let addressText = DEFAULT_METRICS_BIND_ADDRESS;
  // The flag the address came from: the agent's own name for it is taken too, since that is the one users know.
  let addressFlag: string | undefined;
  let output: StatusOutput = 'text';
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => {
      if (eq >= 0) return arg.slice(eq + 1);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) {
        problems.push(`${name} needs a value`);
        return undefined;
      }
      i++;
      return next;
    };
    switch (name) {
      case '--metrics-address':
      case '--metrics-bind-address': {
        const v = value();
        if (addressFlag !== undefined) problems.push(addressFlag === name ? `${name} given more than once` : `${name} and ${addressFlag} are the same setting: give one`);
        else if (v !== undefined) addressText = v;
        addressFlag ??= name;
        break;
      }
      case '--output':
      case '-o': {
        const v = value();
        if (v === 'text' || v === 'json') output = v;
        else if (v !== undefined) problems.push(`${name}: must be text or json, got ${JSON.stringify(v)}`);
        break;
      }
      case '--help':
      case '-h':
        help = true;
        break;
      default: {
        const near = arg.startsWith('-') ? nearestName(name, STATUS_FLAGS) : undefined;
        problems.push(!arg.startsWith('-') ? `unexpected argument ${JSON.stringify(arg)}` : near === undefined ? `unknown flag ${name}` : `unknown flag ${name}; did you mean ${near}?`);
      }
    }
  }
  let address: HostPort | undefined;
  try {
    address = parseAddress(addressText, addressFlag ?? '--metrics-address');
  } catch (err) {
    problems.push(...(err as InvalidConfigError).problems);
  }
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return { address: address as HostPort, output, help };
}

/**
 * `kube-userspace-proxy status [--metrics-address HOST:PORT] [--output text|json]`: asks the
 * running agent's metrics server for /status and prints it. Resolves with the exit code: 0, 1
 * when the agent cannot be reached or answers badly (one line on stderr), 2 for bad arguments.
 */
export async function runStatus(argv: readonly string[], io: StatusIO = process, options: StatusOptions = {}): Promise<number> {
  let args: StatusArgs;
  try {
    args = parseStatusArgs(argv);
  } catch (err) {
    if (!(err instanceof InvalidConfigError)) throw err;
    for (const p of err.problems) io.stderr.write(`${PROGRAM}: ${p}\n`);
    io.stderr.write(`\n${statusUsage()}\n`);
    return 2;
  }
  if (args.help) {
    io.stdout.write(`${statusUsage()}\n`);
    return 0;
  }

  const timeoutMs = options.timeoutMs ?? DEFAULT_STATUS_TIMEOUT_MS;
  const where = formatHostPort(args.address.host, args.address.port);
  const fail = (why: string): number => {
    io.stderr.write(`${PROGRAM}: ${why}\n`);
    return 1;
  };
  // Its own dispatcher, closed at the end: no keep-alive socket outlives the command.
  const dispatcher = new HttpAgent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  let statusCode: number;
  let body: string;
  try {
    const res = await request(`http://${where}/status`, { dispatcher, signal: AbortSignal.timeout(timeoutMs) });
    statusCode = res.statusCode;
    body = await res.body.text();
  } catch (err) {
    return fail(`cannot reach the agent at ${where}: ${describe(err, timeoutMs)} (is it running, with --metrics-bind-address ${where}?)`);
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
  if (statusCode !== 200) return fail(`the agent at ${where} answered HTTP ${statusCode} for /status`);
  let doc: StatusDocument | undefined;
  try {
    doc = JSON.parse(body) as StatusDocument;
  } catch {
    doc = undefined;
  }
  if (!Array.isArray(doc?.servicePorts) || typeof doc.counts !== 'object') {
    return fail(`the answer of ${where}/status is not a status document (is ${where} the metrics address of kube-userspace-proxy?)`);
  }
  io.stdout.write(args.output === 'json' ? body : formatStatusTable(doc));
  return 0;
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string } | undefined;
  if (e?.name === 'TimeoutError' || e?.code === 'UND_ERR_CONNECT_TIMEOUT' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT') {
    return `no answer within ${timeoutMs} ms`;
  }
  return e?.message ?? String(err);
}
