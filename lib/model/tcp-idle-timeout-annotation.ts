import { parseDuration } from '../config/duration.js';
import { InvalidObjectError } from '../errors.js';
import { isMapping } from './object-fields.js';
import type { ObjectMap } from './object-fields.js';

/**
 * The Service annotation that overrides --tcp-idle-timeout for the Service's TCP ports: a
 * duration as the flag takes it (`30s`, `5m`, `2h`), `0` for never.
 */
export const TCP_IDLE_TIMEOUT_ANNOTATION = 'kube-userspace-proxy.io/tcp-idle-timeout';

/** Longest accepted override: a year (a longer one is a typo more likely than a wish). */
const MAX_MS = 366 * 24 * 3_600_000;

/** The annotation's value in ms, undefined when absent; throws InvalidObjectError naming the field when bad. */
export function readTcpIdleTimeout(meta: ObjectMap): number | undefined {
  const annotations = meta['annotations'];
  if (!isMapping(annotations)) return undefined;
  const v = annotations[TCP_IDLE_TIMEOUT_ANNOTATION];
  if (v === undefined || v === null) return undefined;
  const field = `metadata.annotations["${TCP_IDLE_TIMEOUT_ANNOTATION}"]`;
  const ms = typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined || ms > MAX_MS) throw new InvalidObjectError(field, `must be a duration such as 30s, 5m or 2h (0 = never), got ${JSON.stringify(v)}`);
  return ms;
}
