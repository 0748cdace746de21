import dgram from 'node:dgram';
import http from 'node:http';

/** One demo "pod": answers HTTP and UDP on the same port with its own name. */
export interface Pod {
  readonly name: string;
  readonly port: number;
  close(): Promise<void>;
}

export const DEMO_PODS = [
  { name: 'hostnames-a', port: 9376 },
  { name: 'hostnames-b', port: 9377 },
  { name: 'hostnames-c', port: 9378 },
] as const;

export async function startPod(name: string, host: string, port: number): Promise<Pod> {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${name}\n`);
  });
  const udp = dgram.createSocket('udp4');
  udp.on('message', (_msg, rinfo) => udp.send(`${name}\n`, rinfo.port, rinfo.address));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, host, () => resolve());
  });
  return {
    name,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
