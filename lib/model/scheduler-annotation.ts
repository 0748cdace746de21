import { InvalidObjectError } from '../errors.js';
import { parseIP } from './ip-address.js';
import { isDnsSubdomain, isMapping } from './object-fields.js';
import type { ObjectMap } from './object-fields.js';

/**
 * How a service port spreads new connections over its endpoints, named as IPVS names its
 * schedulers where one exists: rr round robin, random, lc least connections, sed shortest expected
 * delay, nq never queue, sh source hashing, mh Maglev (consistent) hashing.
 */
export type SchedulerName = 'rr' | 'random' | 'lc' | 'sed' | 'nq' | 'sh' | 'mh';

export const SCHEDULERS: readonly SchedulerName[] = ['rr', 'random', 'lc', 'sed', 'nq', 'sh', 'mh'];

export const DEFAULT_SCHEDULER: SchedulerName = 'rr';

/** The Service annotation that picks the scheduler of all its ports. */
export const SCHEDULER_ANNOTATION = 'kube-userspace-proxy.io/scheduler';

/** The Service annotation that weights endpoints: `10.0.0.1=3,web-0=2` (by IP address or Pod name). */
export const WEIGHTS_ANNOTATION = 'kube-userspace-proxy.io/weights';

/** Largest weight accepted: IPVS takes up to 65535, but a Maglev table must give each unit a slot. */
export const MAX_WEIGHT = 100;

/** The annotation's scheduler, undefined when absent; throws InvalidObjectError naming the field when bad. */
export function readScheduler(meta: ObjectMap): SchedulerName | undefined {
  const v = annotation(meta, SCHEDULER_ANNOTATION);
  if (v === undefined) return undefined;
  const field = fieldOf(SCHEDULER_ANNOTATION);
  if (v === 'dh') {
    // Destination hashing hashes the address a client connected to. Here that is always the
    // service's portal, the same for every client of the port, so dh would send everyone to one
    // endpoint: refused rather than silently mapped to something else.
    throw new InvalidObjectError(
      field,
      'dh (destination hashing) is not offered: every client of a service port connects to the same portal, so it would pick one endpoint for all; use sh or mh to hash the client address',
    );
  }
  if (typeof v !== 'string' || !(SCHEDULERS as readonly string[]).includes(v)) {
    throw new InvalidObjectError(field, `must be one of ${SCHEDULERS.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as SchedulerName;
}

/**
 * The annotation's weights by endpoint IP address (IPv6 in RFC 5952 form) or Pod name, undefined
 * when absent; throws InvalidObjectError naming the field when bad. Endpoints not named weigh 1.
 */
export function readWeights(meta: ObjectMap): Readonly<Record<string, number>> | undefined {
  const v = annotation(meta, WEIGHTS_ANNOTATION);
  if (v === undefined) return undefined;
  const field = fieldOf(WEIGHTS_ANNOTATION);
  if (typeof v !== 'string') throw new InvalidObjectError(field, `must be a string such as "10.0.0.1=3,web-0=2", got ${JSON.stringify(v)}`);
  const out: Record<string, number> = {};
  for (const raw of v.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = eq < 0 ? '' : item.slice(0, eq).trim();
    const text = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (eq < 0 || name === '') throw new InvalidObjectError(field, `each entry must be ADDRESS=WEIGHT or POD=WEIGHT, got ${JSON.stringify(item)}`);
    const ip = parseIP(name);
    if (ip === undefined && !isDnsSubdomain(name)) throw new InvalidObjectError(field, `${JSON.stringify(name)} is neither an IP address nor a Pod name`);
    const weight = /^[0-9]+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(weight) || weight < 1 || weight > MAX_WEIGHT) {
      throw new InvalidObjectError(field, `the weight of ${name} must be an integer 1-${MAX_WEIGHT}, got ${JSON.stringify(text)}`);
    }
    const key = ip?.address ?? name;
    if (key in out) throw new InvalidObjectError(field, `${name} is given twice`);
    out[key] = weight;
  }
  return out;
}

function annotation(meta: ObjectMap, name: string): unknown {
  const annotations = meta['annotations'];
  if (!isMapping(annotations)) return undefined;
  const v = annotations[name];
  return v === null ? undefined : v;
}

function fieldOf(name: string): string {
  return `metadata.annotations["${name}"]`;
}
