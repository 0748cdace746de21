import { ANY, ENDPOINT_SLICE, ENDPOINTS, NODE, SERVICE } from './object-shapes.js';
import type { Shape } from './object-shapes.js';

/** Most unknown fields named for one object: a file of the wrong kind must not give a warning a megabyte long. */
const MAX_NAMED = 20;

/** The shape of a kind this proxy reads from manifests, or undefined for any other kind. */
export function shapeOf(apiVersion: unknown, kind: unknown): Shape | undefined {
  if (apiVersion === 'v1') return kind === 'Service' ? SERVICE : kind === 'Endpoints' ? ENDPOINTS : kind === 'Node' ? NODE : undefined;
  if (apiVersion === 'discovery.k8s.io/v1' && kind === 'EndpointSlice') return ENDPOINT_SLICE;
  return undefined;
}

/**
 * The paths of the fields of `obj` that its kind does not have, as `spec.ports[0].protocl`, in
 * document order (at most MAX_NAMED). Values of the wrong type are not this function's concern:
 * the conversion to the model rejects those it reads, naming the field.
 */
export function unknownFields(obj: unknown, shape: Shape): string[] {
  const found: string[] = [];
  walk(obj, shape, [], found);
  return found;
}

/**
 * `at` holds the keys and list indices down to `value`; the path is spelt only for a field that is
 * unknown. Spelling every path (20,000 objects of a start-up from 10,000 Services have about 40
 * fields each) was most of the walk's cost.
 */
function walk(value: unknown, shape: Shape, at: Array<string | number>, found: string[]): void {
  if (shape === ANY || value === null || typeof value !== 'object') return;
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return;
    for (let i = 0; i < value.length; i++) {
      at.push(i);
      walk(value[i], shape[0] as Shape, at, found);
      at.pop();
    }
    return;
  }
  if (Array.isArray(value)) return;
  const fields = shape as { readonly [field: string]: Shape };
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (found.length >= MAX_NAMED) return;
    if (Object.hasOwn(fields, key)) {
      at.push(key);
      walk((value as Record<string, unknown>)[key], fields[key]!, at, found);
      at.pop();
    } else found.push(spell(at, key));
  }
}

/** `spec.ports[0].protocl`, as the path was spelt before: keys joined by dots, indices in brackets. */
function spell(at: ReadonlyArray<string | number>, key: string): string {
  let path = '';
  for (const part of at) path = typeof part === 'number' ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`;
  return path === '' ? key : `${path}.${key}`;
}
