/**
 * Both ends of the traffic checks, run inside a test's network namespaces with `ip netns exec`:
 *
 *   node traffic-peer.js serve PORT          TCP and UDP on 0.0.0.0:PORT; answers with the local
 *                                           address the connection/datagram arrived at; prints
 *                                           {"ready":true} once listening; exits on SIGTERM
 *   node traffic-peer.js tcp HOST PORT      connects, prints {"reply": "...", "error": ...}
 *   node traffic-peer.js udp HOST PORT      sends one datagram, prints {"reply": "...", "from": "ip:port"}
 */
import dgram from 'node:dgram';
import net from 'node:net';

const [mode, a, b] = process.argv.slice(2);
const print = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

if (mode === 'serve') {
  const port = Number(a);
  const tcp = net.createServer((socket) => socket.end(`tcp via ${socket.localAddress}:${socket.localPort}`));
  const udp = dgram.createSocket('udp4');
  udp.on('message', (_msg, rinfo) => udp.send(`udp from ${rinfo.address}`, rinfo.port, rinfo.address));
  let ready = 0;
  const up = (): void => {
    if (++ready === 2) print({ ready: true });
  };
  tcp.listen(port, '0.0.0.0', up);
  udp.bind(port, '0.0.0.0', up);
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'tcp') {
  const socket = net.connect({ host: a!, port: Number(b) });
  let reply = '';
  socket.setTimeout(3000, () => socket.destroy(new Error('timeout')));
  socket.on('data', (d: Buffer) => (reply += d.toString()));
  socket.on('end', () => print({ reply }));
  socket.on('error', (err) => print({ error: err.message }));
} else if (mode === 'udp') {
  const socket = dgram.createSocket(a!.includes(':') ? 'udp6' : 'udp4');
  const timer = setTimeout(() => {
    print({ error: 'timeout' });
    socket.close();
  }, 3000);
  socket.on('message', (msg, rinfo) => {
    clearTimeout(timer);
    print({ reply: msg.toString(), from: `${rinfo.address}:${rinfo.port}` });
    socket.close();
  });
  socket.send('ping', Number(b), a!);
} else {
  process.stderr.write('usage: traffic-peer serve PORT | tcp HOST PORT | udp HOST PORT\n');
  process.exit(2);
}
