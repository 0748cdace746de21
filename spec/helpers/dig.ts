import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One resource record as dig prints it. */
export interface DigRecord {
  readonly name: string;
  readonly ttl: number;
  readonly type: string;
  /** The record data, fields joined by single spaces (`0 100 8080 web.shop.svc.cluster.local.`). */
  readonly data: string;
}

export interface DigResult {
  readonly status: string;
  readonly flags: readonly string[];
  readonly answers: readonly DigRecord[];
  readonly authority: readonly DigRecord[];
  readonly output: string;
}

/** Whether the real `dig` (bind9-dnsutils) is installed, and why not. */
export async function digSupport(): Promise<{ ok: boolean; reason: string }> {
  try {
    await run('dig', ['-v']);
    return { ok: true, reason: '' };
  } catch (err) {
    return { ok: false, reason: `dig is not installed (apt-get install bind9-dnsutils): ${(err as Error).message}` };
  }
}

/**
 * Runs the real dig against a server on loopback: one try, a short timeout, answer and authority
 * sections with the header comments. `args` are dig's own (`web.ns.svc.cluster.local`, `SRV`, `+tcp`).
 */
export async function dig(server: { host: string; port: number }, args: string[]): Promise<DigResult> {
  const { stdout } = await run('dig', [`@${server.host}`, '-p', String(server.port), '+tries=1', '+time=3', '+nocookie', '+noall', '+comments', '+answer', '+authority', ...args]);
  const status = /status: ([A-Z]+)/.exec(stdout)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]*);/.exec(stdout)?.[1] ?? '')
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '');
  const answers: DigRecord[] = [];
  const authority: DigRecord[] = [];
  let section: DigRecord[] | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(';; ANSWER SECTION')) section = answers;
    else if (line.startsWith(';; AUTHORITY SECTION')) section = authority;
    else if (line.startsWith(';; ') && line.includes('SECTION')) section = undefined;
    else if (line.trim() !== '' && !line.startsWith(';') && section) {
      const [name, ttl, , type, ...data] = line.trim().split(/\s+/);
      section.push({ name: name!, ttl: Number(ttl), type: type!, data: data.join(' ') });
    }
  }
  return { status, flags, answers, authority, output: stdout };
}
