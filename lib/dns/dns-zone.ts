import type { Answer, RecordType } from 'dns-packet';
import { serviceKeyOfSlice } from '../model/endpoint-slice.js';
import type { EndpointSliceSpec } from '../model/endpoint-slice.js';
import type { ServiceSpec } from '../model/service.js';
import type { ServiceKey } from '../model/service-port-name.js';
import type { ServiceSourceHandler } from '../source/service-source.js';
import { isReverseName, reverseName } from './reverse-name.js';
import { serviceRecords } from './service-records.js';
import type { NameRecords, ServiceRecords } from './service-records.js';

/** The schema version of the Kubernetes DNS specification these records follow (its 2.2). */
export const DNS_SCHEMA_VERSION = '1.1.0';

/** A question's type: a record type, or ANY (255), which the library's types leave out. */
export type QueryType = RecordType | 'ANY';

/** CNAME chains inside the zone are followed at most this far (a loop of ExternalNames ends here). */
const MAX_CNAME_CHAIN = 8;

/**
 * What the zone says about one question: NOERROR with answers, NOERROR without (NODATA: the name
 * exists, not with that type) or NXDOMAIN; `authorities` holds the SOA a negative answer carries
 * for caching (RFC 2308).
 */
export interface ZoneAnswer {
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly additionals: Answer[];
}

export interface DnsZoneOptions {
  /** The cluster domain, lowercase, without a trailing dot. */
  readonly zone: string;
  readonly ttlSeconds: number;
}

/**
 * The cluster domain's records, kept from every Service and EndpointSlice a source delivers: the
 * headless and ExternalName services the proxy skips too. Each change recomputes only its own
 * service's records, so answers follow the source at once.
 */
export class DnsZone implements ServiceSourceHandler {
  readonly zone: string;
  readonly #ttl: number;
  readonly #services = new Map<ServiceKey, ServiceSpec>();
  /** Slices by the service they belong to, then by slice key. */
  readonly #slices = new Map<ServiceKey, Map<string, EndpointSliceSpec>>();
  readonly #records = new Map<ServiceKey, ServiceRecords>();
  /** Services per namespace: `<ns>.svc.<zone>` exists while there is one. */
  readonly #namespaces = new Map<string, number>();
  /** Reverse name → the services contributing PTR targets to it. */
  readonly #ptr = new Map<string, Map<ServiceKey, string[]>>();
  /** The SOA serial: the time of the last change, in seconds, and at least one more per change. */
  #serial = Math.floor(Date.now() / 1000);
  #synced = false;

  constructor(options: DnsZoneOptions) {
    this.zone = options.zone.toLowerCase();
    this.#ttl = options.ttlSeconds;
  }

  /** False until the source has delivered its initial state: until then answers would be wrong, not empty. */
  get synced(): boolean {
    return this.#synced;
  }

  onServiceChange(key: ServiceKey, _previous: ServiceSpec | undefined, current: ServiceSpec | undefined): void {
    const had = this.#services.get(key);
    if (had && !current) this.#countNamespace(had.namespace, -1);
    if (!had && current) this.#countNamespace(current.namespace, 1);
    if (current) this.#services.set(key, current);
    else this.#services.delete(key);
    this.#recompute(key);
  }

  onEndpointSliceChange(key: string, previous: EndpointSliceSpec | undefined, current: EndpointSliceSpec | undefined): void {
    const owners = new Set<ServiceKey>();
    if (previous) {
      const owner = serviceKeyOfSlice(previous);
      const slices = this.#slices.get(owner);
      slices?.delete(key);
      if (slices?.size === 0) this.#slices.delete(owner);
      owners.add(owner);
    }
    if (current) {
      const owner = serviceKeyOfSlice(current);
      let slices = this.#slices.get(owner);
      if (!slices) this.#slices.set(owner, (slices = new Map()));
      slices.set(key, current);
      owners.add(owner);
    }
    for (const owner of owners) this.#recompute(owner);
  }

  onSynced(): void {
    this.#synced = true;
  }

  /** The zone's answer for a (case-insensitive) name, or undefined when the name is not the zone's to answer. */
  lookup(qname: string, qtype: QueryType): ZoneAnswer | undefined {
    const name = normalise(qname);
    if (isReverseName(name)) return this.#reverse(name, qname, qtype);
    if (name !== this.zone && !name.endsWith(`.${this.zone}`)) return undefined;
    return this.#inZone(name, qname, qtype, 0);
  }

  /** The SOA record of the zone, as negative answers carry it. */
  soa(): Answer {
    return {
      name: this.zone,
      type: 'SOA',
      class: 'IN',
      ttl: this.#ttl,
      data: { mname: `ns.dns.${this.zone}`, rname: `hostmaster.${this.zone}`, serial: this.#serial >>> 0, refresh: 7200, retry: 1800, expire: 86400, minimum: this.#ttl },
    };
  }

  #inZone(name: string, qname: string, qtype: QueryType, depth: number): ZoneAnswer {
    const labels = name === this.zone ? [] : name.slice(0, -this.zone.length - 1).split('.');
    const nodata = (): ZoneAnswer => ({ rcode: 'NOERROR', answers: [], authorities: [this.soa()], additionals: [] });
    const nxdomain = (): ZoneAnswer => ({ rcode: 'NXDOMAIN', answers: [], authorities: [this.soa()], additionals: [] });

    if (labels.length === 0) return qtype === 'SOA' || qtype === 'ANY' ? { ...nodata(), answers: [{ ...this.soa(), name: qname }], authorities: [] } : nodata();
    if (labels.length === 1 && labels[0] === 'dns-version') {
      if (qtype !== 'TXT' && qtype !== 'ANY') return nodata();
      return { rcode: 'NOERROR', answers: [{ name: qname, type: 'TXT', class: 'IN', ttl: this.#ttl, data: DNS_SCHEMA_VERSION }], authorities: [], additionals: [] };
    }
    const n = labels.length;
    if (labels[n - 1] !== 'svc') return nxdomain();
    if (n === 1) return nodata();
    if (n === 2) return this.#namespaces.has(labels[0]!) ? nodata() : nxdomain();
    const key = `${labels[n - 2]}/${labels[n - 3]}`;
    const records = this.#records.get(key)?.names.get(labels.slice(0, n - 3).join('.'));
    if (!records) return nxdomain();
    return this.#answer(records, qname, qtype, depth) ?? nodata();
  }

  /** The data of a name for a type, or undefined for none (NODATA). */
  #answer(r: NameRecords, qname: string, qtype: QueryType, depth: number): ZoneAnswer | undefined {
    const rr = (type: 'A' | 'AAAA' | 'CNAME', data: string): Answer => ({ name: qname, type, class: 'IN', ttl: this.#ttl, data });
    if (r.cname !== undefined) {
      const answers = [rr('CNAME', r.cname)];
      const target = normalise(r.cname);
      // A target inside the zone is answered here as well; one outside is left to the client's resolver.
      if (qtype !== 'CNAME' && depth < MAX_CNAME_CHAIN && (target === this.zone || target.endsWith(`.${this.zone}`))) {
        const chased = this.#inZone(target, r.cname, qtype, depth + 1);
        answers.push(...chased.answers);
        return { rcode: chased.rcode, answers, authorities: chased.answers.length > 0 ? [] : chased.authorities, additionals: [] };
      }
      return { rcode: 'NOERROR', answers, authorities: [], additionals: [] };
    }
    const answers: Answer[] = [];
    const additionals: Answer[] = [];
    if (qtype === 'A' || qtype === 'ANY') answers.push(...r.a.map((ip) => rr('A', ip)));
    if (qtype === 'AAAA' || qtype === 'ANY') answers.push(...r.aaaa.map((ip) => rr('AAAA', ip)));
    if (qtype === 'SRV' || qtype === 'ANY') {
      const targets = new Set<string>();
      for (const s of r.srv) {
        answers.push({ name: qname, type: 'SRV', class: 'IN', ttl: this.#ttl, data: { priority: s.priority, weight: s.weight, port: s.port, target: s.target } });
        targets.add(s.target);
      }
      // The specification allows the targets' addresses in the additional section; it saves a round trip.
      for (const target of targets) {
        for (const type of ['A', 'AAAA'] as const) additionals.push(...this.#inZone(target, target, type, MAX_CNAME_CHAIN).answers);
      }
    }
    return answers.length > 0 ? { rcode: 'NOERROR', answers, authorities: [], additionals } : undefined;
  }

  /**
   * PTR names of service and endpoint addresses. The reverse zones are not ours: a name without
   * one of our addresses is left to the upstream (undefined), as CoreDNS's `fallthrough`.
   */
  #reverse(name: string, qname: string, qtype: QueryType): ZoneAnswer | undefined {
    const owners = this.#ptr.get(name);
    if (!owners) return undefined;
    const answers: Answer[] = [];
    if (qtype === 'PTR' || qtype === 'ANY') {
      const seen = new Set<string>();
      for (const targets of owners.values()) {
        for (const target of targets) {
          if (seen.has(target)) continue;
          seen.add(target);
          answers.push({ name: qname, type: 'PTR', class: 'IN', ttl: this.#ttl, data: target });
        }
      }
    }
    return { rcode: 'NOERROR', answers, authorities: [], additionals: [] };
  }

  #recompute(key: ServiceKey): void {
    this.#serial = Math.max(this.#serial + 1, Math.floor(Date.now() / 1000));
    const old = this.#records.get(key);
    if (old) for (const { ip } of old.ptr) this.#dropPtr(reverseName(ip), key);
    const svc = this.#services.get(key);
    if (!svc) {
      this.#records.delete(key);
      return;
    }
    const records = serviceRecords(svc, this.#slices.get(key)?.values() ?? [], this.zone);
    this.#records.set(key, records);
    for (const { ip, target } of records.ptr) {
      const rev = reverseName(ip);
      let owners = this.#ptr.get(rev);
      if (!owners) this.#ptr.set(rev, (owners = new Map()));
      let targets = owners.get(key);
      if (!targets) owners.set(key, (targets = []));
      if (!targets.includes(target)) targets.push(target);
    }
  }

  #dropPtr(rev: string, key: ServiceKey): void {
    const owners = this.#ptr.get(rev);
    owners?.delete(key);
    if (owners?.size === 0) this.#ptr.delete(rev);
  }

  #countNamespace(ns: string, delta: number): void {
    const n = (this.#namespaces.get(ns) ?? 0) + delta;
    if (n > 0) this.#namespaces.set(ns, n);
    else this.#namespaces.delete(ns);
  }
}

/** Names compare case-insensitively (the specification, 2.1), with or without the final dot. */
function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}
