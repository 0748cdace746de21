import { isMapping } from './object-fields.js';

/**
 * Set by the EndpointSlice and Endpoints controllers to the time of the Pod or Service change that
 * led to this version of the object; kube-proxy's network programming latency starts there.
 */
export const LAST_CHANGE_TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';

/** RFC 3339 as Go writes it (fractional seconds optional, `Z` or an offset). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * The last-change-trigger-time of an object's metadata, in ms since the epoch; undefined when it is
 * absent or not a time. A malformed value is ignored rather than rejected, as kube-proxy does: it
 * only feeds a metric, and must not cost the endpoints themselves.
 */
export function triggerTimeOf(meta: unknown): number | undefined {
  if (!isMapping(meta) || !isMapping(meta['annotations'])) return undefined;
  const v = meta['annotations'][LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  if (typeof v !== 'string' || !RFC3339.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}
