import { InvalidObjectError } from '../errors.js';
import type { TargetRef } from './endpoint-slice.js';
import { DNS_SUBDOMAIN_RULE, fieldPath, isAbsent, isDnsSubdomain, optionalString, requireMapping } from './object-fields.js';

/**
 * An endpoint's `targetRef` (an ObjectReference): kind, namespace (the slice's when unset) and
 * name. undefined when absent or when it names nothing (no name): such an endpoint has no pod to
 * forward to. Throws InvalidObjectError naming the field when a field has the wrong type, or a
 * Pod's name is not a valid pod name.
 */
export function readTargetRef(v: unknown, path: string, sliceNamespace: string): TargetRef | undefined {
  if (isAbsent(v)) return undefined;
  const ref = requireMapping(v, path);
  const kind = optionalString(ref['kind'], fieldPath(path, 'kind')) ?? '';
  const name = optionalString(ref['name'], fieldPath(path, 'name')) ?? '';
  const namespace = optionalString(ref['namespace'], fieldPath(path, 'namespace')) || sliceNamespace;
  if (name === '') return undefined;
  if (kind === 'Pod' && !isDnsSubdomain(name)) throw new InvalidObjectError(fieldPath(path, 'name'), DNS_SUBDOMAIN_RULE);
  return { kind, namespace, name };
}
