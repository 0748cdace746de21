import { parseDuration } from '../config/duration.js';
import { InvalidObjectError } from '../errors.js';
import { isMapping } from './object-fields.js';
import type { ObjectMap } from './object-fields.js';

/**
 * The Service annotation that closes the Service's TCP connections once they are this old (a
 * duration: `30s`, `10m`, `2h`; `0` or absent = never), so that long-lived clients reconnect and
 * spread over endpoints added since. Each connection closes at a uniformly random moment between
 * the age and 1.1 times the age, so that connections opened together do not all close together.
 */
export const MAX_CONNECTION_AGE_ANNOTATION = 'kube-userspace-proxy.io/max-connection-age';

/** Shortest accepted age: one second (shorter would close connections before they carry anything). */
const MIN_MS = 1000;
/** Longest accepted age: a year (a longer one is a typo more likely than a wish). */
const MAX_MS = 366 * 24 * 3_600_000;

/** The annotation's value in ms (0 = never), undefined when absent; throws InvalidObjectError naming the field when bad. */
export function readMaxConnectionAge(meta: ObjectMap): number | undefined {
  const annotations = meta['annotations'];
  if (!isMapping(annotations)) return undefined;
  const v = annotations[MAX_CONNECTION_AGE_ANNOTATION];
  if (v === undefined || v === null) return undefined;
  const field = `metadata.annotations["${MAX_CONNECTION_AGE_ANNOTATION}"]`;
  const ms = typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined || ms > MAX_MS || (ms !== 0 && ms < MIN_MS)) {
    throw new InvalidObjectError(field, `must be a duration of at least 1s such as 30s, 10m or 2h (0 = never), got ${JSON.stringify(v)}`);
  }
  return ms;
}
