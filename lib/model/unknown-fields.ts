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
  walk(obj, shape, '', found);
  return found;
}

function walk(value: unknown, shape: Shape, path: string, found: string[]): void {
  if (shape === ANY || value === null || typeof value !== 'object') return;
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return;
    value.forEach((item: unknown, i: number) => walk(item, shape[0] as Shape, `${path}[${i}]`, found));
    return;
  }
  if (Array.isArray(value)) return;
  const fields = shape as { readonly [field: string]: Shape };
  for (const [key, child] of Object.entries(value)) {
    if (found.length >= MAX_NAMED) return;
    const at = path === '' ? key : `${path}.${key}`;
    if (Object.hasOwn(fields, key)) walk(child, fields[key]!, at, found);
    else found.push(at);
  }
}
