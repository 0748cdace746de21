/**
 * A "pod" for the namespace tests, run inside a pod namespace:
 *
 *   node dist/spec/helpers/netns-backend.js --name pod-1 --host 10.9.1.2 --tcp 8080 --udp 5353 [--host6 fd00:9:1::2]
 *
 * Answers every HTTP request with its name (body and `x-backend` header) and every UDP datagram
 * with its name, on --host and (when given) on --host6 as well. Prints one JSON line `{"ready":true,...}` on stdout once both sockets listen;
 * exits on SIGTERM/SIGINT.
 */
import dgram from 'node:dgram';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    host: { type: 'string' },
    host6: { type: 'string' },
    tcp: { type: 'string' },
    udp: { type: 'string' },
  },
});
const { name, host, host6 } = values;
const tcpPort = Number(values.tcp);
const udpPort = Number(values.udp);
if (!name || !host || !Number.isInteger(tcpPort) || !Number.isInteger(udpPort)) {
  process.stderr.write('usage: netns-backend --name NAME --host IP --tcp PORT --udp PORT\n');
  process.exit(2);
}

const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  req.resume();
  res.setHeader('x-backend', name);
  res.setHeader('connection', 'close');
  res.end(name);
};
const server = http.createServer(answer);
const udp = dgram.createSocket('udp4');
udp.on('message', (_msg, rinfo) => udp.send(Buffer.from(name), rinfo.port, rinfo.address));
const server6 = host6 === undefined ? undefined : http.createServer(answer);
const udp6 = host6 === undefined ? undefined : dgram.createSocket('udp6');
udp6?.on('message', (_msg, rinfo) => udp6.send(Buffer.from(name), rinfo.port, rinfo.address));

const fail = (err: Error): void => {
  process.stderr.write(`netns-backend ${name}: ${err.message}\n`);
  process.exit(1);
};
server.on('error', fail);
udp.on('error', fail);
server6?.on('error', fail);
udp6?.on('error', fail);

await new Promise<void>((resolve) => server.listen({ host, port: tcpPort }, resolve));
await new Promise<void>((resolve) => udp.bind(udpPort, host, resolve));
if (server6 && udp6) {
  await new Promise<void>((resolve) => server6.listen({ host: host6, port: tcpPort }, resolve));
  await new Promise<void>((resolve) => udp6.bind(udpPort, host6, resolve));
}
process.stdout.write(`${JSON.stringify({ ready: true, name, host, host6, tcp: tcpPort, udp: udpPort })}\n`);

const stop = (): void => {
  udp.close();
  udp6?.close();
  server6?.close();
  server6?.closeAllConnections();
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
