import dgram from 'node:dgram';
import net from 'node:net';
import test from 'ava';
import dnsPacket from 'dns-packet';
import { loopbackBlock } from '../helpers/addresses.js';
import { tcpEcho, tcpRequest, udpRequest } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait-for.js';
import { startDns } from './dns-fixture.js';

const ip = loopbackBlock(193);

/** mulberry32: a small seeded generator, so that a failing run can be repeated exactly. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 0x5eed11;
const PACKETS = 400;

/** Malformed messages of many kinds: noise, cut and flipped valid queries, lying counts, pointer loops, bad labels, EDNS of another version. */
function malformed(rand: () => number): Buffer[] {
  const int = (n: number) => Math.floor(rand() * n);
  const valid = dnsPacket.encode({
    id: 1,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: 'web.fuzz.svc.cluster.local', type: 'A' }],
    additionals: [{ name: '.', type: 'OPT', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
  const out: Buffer[] = [];
  for (let i = 0; i < PACKETS; i++) {
    const kind = i % 8;
    let b: Buffer;
    if (kind === 0) {
      b = Buffer.alloc(int(600));
      for (let j = 0; j < b.length; j++) b[j] = int(256);
    } else if (kind === 1) {
      b = Buffer.from(valid.subarray(0, int(valid.length)));
    } else if (kind === 2) {
      b = Buffer.from(valid);
      for (let j = 0; j < 1 + int(6); j++) b[int(b.length)] = int(256);
      b[2]! &= 0x7f; // still a query, so that it is answered and not dropped
    } else if (kind === 3) {
      b = Buffer.from(valid);
      b.writeUInt16BE(int(65536), 4 + 2 * int(4)); // a section count that lies
    } else if (kind === 4) {
      // A question name that is a compression pointer to itself, then one pointing forwards.
      b = Buffer.alloc(18);
      b.writeUInt16BE(i, 0);
      b.writeUInt16BE(1, 4);
      b.writeUInt16BE(0xc000 | (i % 16 === 4 ? 12 : 14), 12);
    } else if (kind === 5) {
      // Labels longer than 63 (the top bits 01 and 10 are reserved) and a name past 255 bytes.
      const labels = Buffer.alloc(300, 0x3f);
      b = Buffer.concat([valid.subarray(0, 12), Buffer.from([0x40 | int(64)]), labels, Buffer.from([0, 0, 1, 0, 1])]);
    } else if (kind === 6) {
      const edns = dnsPacket.encode({
        id: i,
        type: 'query',
        questions: [{ name: 'web.fuzz.svc.cluster.local', type: 'A' }],
        additionals: [{ name: '.', type: 'OPT', udpPayloadSize: int(65536), extendedRcode: 0, ednsVersion: 1 + int(255), flags: 0, flag_do: false, options: [] }],
      });
      b = Buffer.from(edns);
    } else {
      b = Buffer.from(valid);
      b.writeUInt16BE(0x8000 | int(0x8000), 2); // a "response": must never be answered
    }
    out.push(b);
  }
  return out;
}

test('malformed messages over UDP and TCP get FORMERR or nothing, while a proxied TCP service keeps answering and DNS keeps working', async (t) => {
  const backend = await tcpEcho('127.0.0.1');
  t.teardown(() => backend.close());
  const f = await startDns(
    t,
    {
      'svc.yaml': `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: fuzz}
spec:
  clusterIP: "${ip(1)}"
  ports: [{name: echo, port: 19090}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-a, namespace: fuzz, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: echo, port: ${backend.port}}]
endpoints: [{addresses: ["127.0.0.1"]}]
`,
    },
    { proxy: true },
  );
  await waitFor('the proxied service', async () => (await tcpRequest(ip(1), 19090, 'ping')).toString() === 'ping');

  // The data path, kept busy for as long as the fuzzing lasts.
  let fuzzing = true;
  let proxied = 0;
  const failures: string[] = [];
  const traffic = (async () => {
    for (let i = 0; fuzzing && i < 10_000; i++) {
      try {
        const reply = (await tcpRequest(ip(1), 19090, `m${i}`, 5000)).toString();
        if (reply === `m${i}`) proxied++;
        else failures.push(`echo ${i}: ${reply}`);
      } catch (err) {
        failures.push(`echo ${i}: ${(err as Error).message}`);
      }
    }
  })();

  // A TCP client that sends half a message and stalls: it must hold nothing but its own connection.
  const stalled = net.connect({ host: f.server.host, port: f.server.port });
  stalled.on('error', () => {});
  t.teardown(() => stalled.destroy());
  stalled.write(Buffer.from([0x01, 0x00, 0xab]));

  const rand = random(SEED);
  const packets = malformed(rand);
  const udp = dgram.createSocket('udp4');
  t.teardown(() => udp.close());
  const replies: Buffer[] = [];
  udp.on('message', (msg) => replies.push(msg));
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
  for (const [i, p] of packets.entries()) {
    await new Promise<void>((resolve) => udp.send(p, f.server.port, f.server.host, () => resolve()));
    // A pause every few packets: the point is malformed input, not a flood of a shared machine.
    if (i % 20 === 19) await new Promise((r) => setImmediate(r));
  }

  // The same over TCP: each malformed message framed on a few connections.
  let tcpReplies = 0;
  for (let c = 0; c < 4; c++) {
    const frames = packets.filter((_, i) => i % 4 === c).map((p) => Buffer.concat([Buffer.from([p.length >> 8, p.length & 0xff]), p]));
    const got = await new Promise<number>((resolve) => {
      const s = net.connect({ host: f.server.host, port: f.server.port });
      let n = 0;
      s.on('data', (d: Buffer) => (n += d.length));
      s.on('error', () => resolve(n));
      s.on('close', () => resolve(n));
      s.on('connect', () => s.end(Buffer.concat(frames)));
      setTimeout(() => s.destroy(), 3000).unref();
    });
    tcpReplies += got;
  }

  // Every reply is a response that decodes; none answers a message that was itself a response.
  await waitFor('replies to the malformed queries', () => replies.length >= PACKETS / 2);
  const rcodes = new Set<string>();
  for (const r of replies) {
    const d = dnsPacket.decode(r) as unknown as { flag_qr: boolean; rcode: string };
    t.true(d.flag_qr);
    rcodes.add(d.rcode);
  }
  t.true(rcodes.has('FORMERR'), [...rcodes].join());
  t.true(replies.length < PACKETS, 'the "responses" among them were not answered');
  t.true(tcpReplies > 0);
  // The "responses" (one in eight) sent over UDP were each dropped (over TCP the first one ends its
  // connection), and so were messages shorter than a header.
  const outcomes = f.dns.server.outcomes();
  t.true((outcomes.formerr ?? 0) > 0);
  t.true((outcomes.dropped ?? 0) >= PACKETS / 8, JSON.stringify(outcomes));

  // Still answering, over UDP and TCP-with-a-stalled-neighbour.
  const q = dnsPacket.encode({ id: 4242, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'web.fuzz.svc.cluster.local', type: 'A' }] });
  const answer = dnsPacket.decode(await udpRequest(f.server.host, f.server.port, q)) as unknown as { id: number; rcode: string; answers: Array<{ data: string }> };
  t.is(answer.id, 4242);
  t.is(answer.rcode, 'NOERROR');
  t.deepEqual(
    answer.answers.map((a) => a.data),
    [ip(1)],
  );

  fuzzing = false;
  await traffic;
  t.deepEqual(failures, []);
  t.true(proxied > 0);
  t.log(`${PACKETS} malformed messages each over UDP and TCP, ${replies.length} UDP replies (${[...rcodes].join(', ')}), ${proxied} proxied connections meanwhile`);
  t.true(f.agent!.health().healthy, f.agent!.health().reasons.join());
});
