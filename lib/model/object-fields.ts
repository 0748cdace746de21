import { InvalidObjectError } from '../errors.js';
import { parseIP } from './ip-address.js';
import type { IPFamily } from './ip-address.js';

/**
 * Typed reads of untyped Kubernetes objects (parsed YAML/JSON or API responses). Every reader
 * takes the field path it is reading so that a failure names the exact field, as
 * `spec.ports[1].targetPort`. null and undefined both mean "not given", as in Go's decoding.
 */

export type ObjectMap = Readonly<Record<string, unknown>>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isMapping(v: unknown): v is ObjectMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isAbsent(v: unknown): v is null | undefined {
  return v === undefined || v === null;
}

/** `path.name`, or `name` at the root. */
export function fieldPath(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

export function indexPath(path: string, i: number): string {
  return `${path}[${i}]`;
}

/** `path["key"]`, for map keys that contain dots or slashes (labels). */
export function keyPath(path: string, key: string): string {
  return `${path}[${JSON.stringify(key)}]`;
}

export function requireMapping(v: unknown, path: string): ObjectMap {
  if (isAbsent(v)) throw new InvalidObjectError(path, 'is required');
  if (!isMapping(v)) throw new InvalidObjectError(path, 'must be a mapping');
  return v;
}

/** An optional mapping; absent gives an empty one. */
export function optionalMapping(v: unknown, path: string): ObjectMap {
  if (isAbsent(v)) return {};
  if (!isMapping(v)) throw new InvalidObjectError(path, 'must be a mapping');
  return v;
}

/** An optional list; absent gives an empty one. */
export function optionalArray(v: unknown, path: string): readonly unknown[] {
  if (isAbsent(v)) return [];
  if (!Array.isArray(v)) throw new InvalidObjectError(path, 'must be a list');
  return v;
}

export function optionalString(v: unknown, path: string): string | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'string') throw new InvalidObjectError(path, 'must be a string');
  return v;
}

export function optionalBoolean(v: unknown, path: string): boolean | undefined {
  if (isAbsent(v)) return undefined;
  if (typeof v !== 'boolean') throw new InvalidObjectError(path, 'must be true or false');
  return v;
}

export function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[], fallback: T): T {
  if (isAbsent(v)) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new InvalidObjectError(path, `must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

export function integerIn(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidObjectError(path, `must be an integer ${min}-${max}`);
  }
  return v;
}

/** A DNS-1123 label: what Kubernetes requires of namespaces, Service names and port names. */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** A DNS-1123 subdomain: what Kubernetes requires of most other object names. */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN.test(s);
}

/** IANA_SVC_NAME, what a named targetPort must be: it must have a letter, or it would read as a number. */
export function isIanaServiceName(s: string): boolean {
  return s.length >= 1 && s.length <= 15 && DNS_LABEL.test(s) && !s.includes('--') && /[a-z]/.test(s);
}

/** A label map: string values only (null reads as '', as Go's decoding gives). */
export function stringMap(v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const map = optionalMapping(v, path);
  // Own keys in Object.entries' order, without an array of pairs for every map (most are empty).
  for (const k in map) {
    if (!Object.hasOwn(map, k)) continue;
    const value = map[k];
    if (isAbsent(value)) out[k] = '';
    else if (typeof value === 'string') out[k] = value;
    else throw new InvalidObjectError(keyPath(path, k), 'must be a string');
  }
  return out;
}

/** A valid IP, of `family` when given; returns it normalised (see parseIP). */
export function ipAddress(v: unknown, path: string, family?: IPFamily): string {
  const what = family ? `a valid ${family} address` : 'a valid IP address';
  if (typeof v !== 'string') throw new InvalidObjectError(path, `must be ${what}`);
  const ip = parseIP(v);
  if (!ip || (family && ip.family !== family)) throw new InvalidObjectError(path, `must be ${what}`);
  return ip.address;
}

/** metadata.name and metadata.namespace (defaulting to `default`). */
export function objectMeta(obj: ObjectMap, isValidName: (s: string) => boolean, nameRule: string): { name: string; namespace: string; meta: ObjectMap } {
  const meta = requireMapping(obj['metadata'], 'metadata');
  const name = optionalString(meta['name'], 'metadata.name');
  if (name === undefined || name === '') throw new InvalidObjectError('metadata.name', 'is required');
  if (!isValidName(name)) throw new InvalidObjectError('metadata.name', nameRule);
  const namespace = optionalString(meta['namespace'], 'metadata.namespace') || 'default';
  if (!isDnsLabel(namespace)) throw new InvalidObjectError('metadata.namespace', DNS_LABEL_RULE);
  return { name, namespace, meta };
}

export const DNS_LABEL_RULE = 'must be at most 63 lowercase letters, digits and -, starting and ending with a letter or digit';
export const DNS_SUBDOMAIN_RULE = 'must be at most 253 lowercase letters, digits, - and ., each dot-separated part starting and ending with a letter or digit';

/** The root of an object: a mapping whose `kind`, when given, is the one expected. */
export function objectRoot(obj: unknown, kind: string): ObjectMap {
  if (!isMapping(obj)) throw new InvalidObjectError('', `a ${kind} must be a mapping`);
  const k = optionalString(obj['kind'], 'kind');
  if (k !== undefined && k !== kind) throw new InvalidObjectError('kind', `must be ${kind}`);
  return obj;
}
