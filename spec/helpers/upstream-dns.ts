import dgram from 'node:dgram';
import net from 'node:net';
import type { ExecutionContext } from 'ava';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';

export interface UpstreamDns {
  readonly host: string;
  readonly port: number;
  /** Queries received, as `udp:name:type` / `tcp:name:type`. */
  readonly queries: string[];
}

/** Names the stand-in upstream answers with this many A records: too many for 512 bytes. */
export const BIG_NAME = 'big.example.test';
const BIG_COUNT = 60;

/**
 * A small DNS server standing in for the system's resolver, on a loopback address of the test's
 * own: every A question gets 192.0.2.1 (BIG_NAME gets 60 records, truncated over UDP), anything
 * else NXDOMAIN. UDP and TCP on one port; closed in teardown.
 */
export async function startUpstreamDns(t: ExecutionContext, host: string): Promise<UpstreamDns> {
  const queries: string[] = [];
  const answer = (msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    let q;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    const question = q.questions?.[0];
    if (!question) return undefined;
    queries.push(`${transport}:${question.name}:${question.type}`);
    const answers: Answer[] = [];
    if (question.type === 'A') {
      const count = question.name === BIG_NAME ? BIG_COUNT : 1;
      for (let i = 1; i <= count; i++) answers.push({ name: question.name, type: 'A', class: 'IN', ttl: 60, data: `192.0.2.${i}` });
    }
    const rcode = answers.length > 0 ? 0 : 3;
    const reply = dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode, questions: [question], answers });
    if (transport === 'udp' && reply.length > 512) {
      return dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE, questions: [question] });
    }
    return reply;
  };

  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => udp.bind(0, host, () => resolve()));
  const port = udp.address().port;
  udp.on('message', (msg, rinfo) => {
    const reply = answer(msg, 'udp');
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  const tcp = net.createServer((c) => {
    let buf: Buffer = Buffer.alloc(0);
    c.on('error', () => c.destroy());
    c.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const reply = answer(Buffer.from(msg), 'tcp');
        if (!reply) return void c.destroy();
        const head = Buffer.alloc(2);
        head.writeUInt16BE(reply.length, 0);
        c.write(Buffer.concat([head, reply]));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, host, () => resolve());
  });
  t.teardown(() => {
    udp.close();
    tcp.close();
  });
  return { host, port, queries };
}
