import { execFileSync } from 'node:child_process';

/**
 * Process ids owning the sockets of `proto` bound locally to host:port (ss -p), from the kernel's
 * socket table: which process accepted a connection, or holds a UDP socket.
 */
export function socketOwners(proto: 'tcp' | 'udp', host: string, port: number): number[] {
  const args = proto === 'tcp' ? ['-Htnp', 'state', 'established'] : ['-Hunpa'];
  const out = execFileSync('ss', [...args, 'src', `${host}:${port}`], { encoding: 'utf8' });
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}
