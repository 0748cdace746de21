import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer, Packet } from 'dns-packet';
import type { DnsZone, QueryType } from './dns-zone.js';
import type { DnsTransport, Upstream } from './upstream-forwarder.js';

/** Response codes (RFC 1035 4.1.1, RFC 6891 for BADVERS). */
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const BADVERS = 16;
const QR = 0x8000;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const RD = dnsPacket.RECURSION_DESIRED;
const RA = dnsPacket.RECURSION_AVAILABLE;

/** Without EDNS0 a UDP answer holds at most 512 bytes (RFC 1035 4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/**
 * The most this server puts in one UDP answer whatever the client advertises: 1232 bytes fits any
 * path's MTU without fragments (the DNS Flag Day 2020 figure); larger answers go over TCP.
 */
export const MAX_UDP_SIZE = 1232;
/** A DNS message over TCP carries a two-byte length. */
const MAX_TCP_SIZE = 65535;

export interface DnsResponderOptions {
  readonly zone: DnsZone;
  /** Names outside the zone go here; without it they are REFUSED. */
  readonly upstream?: Upstream | undefined;
}

/** What came of one query, for counting and logs. */
export type Outcome = 'answered' | 'forwarded' | 'refused' | 'formerr' | 'notimp' | 'servfail' | 'dropped';

/**
 * Answers one DNS message: the cluster domain from the zone, the rest by the upstream or REFUSED.
 * Never throws: a message that does not decode gets FORMERR when it has a header to answer to,
 * and is dropped otherwise (as is anything that is itself a response, so that two servers can
 * never bounce errors at each other).
 */
export class DnsResponder {
  readonly #zone: DnsZone;
  readonly #upstream: Upstream | undefined;

  constructor(options: DnsResponderOptions) {
    this.#zone = options.zone;
    this.#upstream = options.upstream;
  }

  async respond(query: Buffer, transport: DnsTransport): Promise<{ reply: Buffer | undefined; outcome: Outcome }> {
    if (query.length < 12) return { reply: undefined, outcome: 'dropped' };
    const id = query.readUInt16BE(0);
    const flags = query.readUInt16BE(2);
    if (flags & QR) return { reply: undefined, outcome: 'dropped' };
    const opcode = (flags >> 11) & 0xf;
    const rd = flags & RD;
    const bare = (rcode: number): Buffer => dnsPacket.encode({ id, type: 'response', flags: (opcode << 11) | rd | this.#ra() | rcode, questions: [] });
    if (opcode !== 0) return { reply: bare(RCODE.NOTIMP), outcome: 'notimp' };

    let packet: DecodedPacket;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      return { reply: bare(RCODE.FORMERR), outcome: 'formerr' };
    }
    const questions = packet.questions ?? [];
    const opts = (packet.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
    if (questions.length !== 1 || opts.length > 1 || (packet.answers ?? []).length > 0) return { reply: bare(RCODE.FORMERR), outcome: 'formerr' };
    const question = questions[0]!;
    const opt = opts[0];
    if (opt && opt.ednsVersion > 0) {
      // RFC 6891 6.1.3: only version 0 exists; the upper bits of BADVERS go in the OPT record.
      const reply = dnsPacket.encode({ id, type: 'response', flags: (opcode << 11) | rd | this.#ra(), questions, additionals: [this.#opt(BADVERS >> 4)] });
      return { reply, outcome: 'formerr' };
    }

    // A client that sent EDNS0 gets an OPT record in every answer (RFC 6891 7), errors included.
    const plain = (rcode: number): Buffer => dnsPacket.encode({ id, type: 'response', flags: (opcode << 11) | rd | this.#ra() | rcode, questions: [question], additionals: opt ? [this.#opt(0)] : [] });
    const inZone = question.class === 'IN' || question.class === undefined ? this.#zone.lookup(question.name, question.type as QueryType) : undefined;
    if (inZone === undefined) {
      if (this.#zone.lookup(question.name, 'SOA') !== undefined) return { reply: plain(RCODE.REFUSED), outcome: 'refused' };
      if (!this.#upstream) return { reply: plain(RCODE.REFUSED), outcome: 'refused' };
      const reply = await this.#upstream.forward(query, transport);
      return reply ? { reply, outcome: 'forwarded' } : { reply: plain(RCODE.SERVFAIL), outcome: 'servfail' };
    }
    // Before the source's first full state an empty answer would be cached as the truth.
    if (!this.#zone.synced) return { reply: plain(RCODE.SERVFAIL), outcome: 'servfail' };

    const limit = transport === 'tcp' ? MAX_TCP_SIZE : opt ? Math.min(Math.max(opt.udpPayloadSize, CLASSIC_UDP_SIZE), MAX_UDP_SIZE) : CLASSIC_UDP_SIZE;
    const base = (opcode << 11) | AA | rd | this.#ra() | RCODE[inZone.rcode];
    const extra: Answer[] = opt ? [this.#opt(0)] : [];
    const full: Packet = { id, type: 'response', flags: base, questions: [question], answers: inZone.answers, authorities: inZone.authorities, additionals: [...inZone.additionals, ...extra] };
    let reply = dnsPacket.encode(full);
    if (reply.length > limit) {
      // Additional records may simply be left out (RFC 2181 9); without the answer itself the
      // client must be told, and asks again over TCP.
      reply = dnsPacket.encode({ ...full, additionals: extra });
      if (reply.length > limit) {
        if (transport === 'tcp') return { reply: plain(RCODE.SERVFAIL), outcome: 'servfail' };
        reply = dnsPacket.encode({ ...full, flags: base | TC, answers: [], authorities: [], additionals: extra });
      }
    }
    return { reply, outcome: 'answered' };
  }

  /** Recursion is available exactly when names outside the zone are forwarded. */
  #ra(): number {
    return this.#upstream ? RA : 0;
  }

  #opt(extendedRcode: number): OptAnswer {
    return { name: '.', type: 'OPT', udpPayloadSize: MAX_UDP_SIZE, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
  }
}
