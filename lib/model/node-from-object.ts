import { InvalidObjectError } from '../errors.js';
import type { NodeSpec, NodeTaint } from './node.js';
import { DNS_SUBDOMAIN_RULE, fieldPath, indexPath, isDnsSubdomain, objectRoot, optionalArray, optionalMapping, optionalString, requireMapping, stringMap } from './object-fields.js';

/** Validates a v1 Node (cluster-scoped: no namespace) into a NodeSpec. Throws InvalidObjectError naming the field. */
export function nodeFromObject(obj: unknown): NodeSpec {
  const root = objectRoot(obj, 'Node');
  const meta = requireMapping(root['metadata'], 'metadata');
  const name = optionalString(meta['name'], 'metadata.name');
  if (name === undefined || name === '') throw new InvalidObjectError('metadata.name', 'is required');
  if (!isDnsSubdomain(name)) throw new InvalidObjectError('metadata.name', DNS_SUBDOMAIN_RULE);
  const labels = stringMap(meta['labels'], 'metadata.labels');
  const deletionTimestamp = optionalString(meta['deletionTimestamp'], 'metadata.deletionTimestamp');
  const spec = optionalMapping(root['spec'], 'spec');
  const taints = optionalArray(spec['taints'], 'spec.taints').map((entry, i): NodeTaint => {
    const path = indexPath('spec.taints', i);
    const taint = requireMapping(entry, path);
    const key = optionalString(taint['key'], fieldPath(path, 'key'));
    if (key === undefined || key === '') throw new InvalidObjectError(fieldPath(path, 'key'), 'is required');
    const value = optionalString(taint['value'], fieldPath(path, 'value')) ?? '';
    const effect = optionalString(taint['effect'], fieldPath(path, 'effect')) ?? '';
    return { key, value, effect };
  });
  return { name, labels, deleting: deletionTimestamp !== undefined && deletionTimestamp !== '', taints };
}
