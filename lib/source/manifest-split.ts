import { isMapping } from '../model/object-fields.js';
import { parseYamlDocuments } from './yaml-documents.js';
import type { YamlDocument } from './yaml-documents.js';

/** Where in a file an object came from: the document (1-based) and, inside a List, the item (0-based, as in `items[0]`). */
export interface ManifestLocation {
  readonly document: number;
  readonly item?: number;
}

/** One object read from a file, or the reason its document could not be read. */
export type ManifestDocument = (ManifestLocation & { readonly object: unknown }) | (ManifestLocation & { readonly error: string });

/** A `.json` file is one JSON value; anything else is a YAML stream. */
export function isJsonManifest(fileName: string): boolean {
  return fileName.toLowerCase().endsWith('.json');
}

/**
 * Splits a file into objects: YAML documents (`---`), or one JSON value for a `.json` file, with
 * `kind: List` (or any `*List`) expanded into its items. Empty documents are skipped but still
 * counted, so document numbers match what a reader counts in the file.
 */
export function splitManifest(text: string, fileName = ''): ManifestDocument[] {
  if (!isJsonManifest(fileName)) return manifestDocumentsOf(parseYamlDocuments(text));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return [{ document: 1, error: `invalid JSON: ${(err as Error).message}` }];
  }
  const out: ManifestDocument[] = [];
  objectsOfDocument(1, value, (doc) => void out.push(doc));
  return out;
}

/** The objects of a YAML stream's documents, numbered from 1; a document that cannot be read is its error. */
function manifestDocumentsOf(documents: readonly YamlDocument[]): ManifestDocument[] {
  const out: ManifestDocument[] = [];
  const add = (doc: ManifestDocument): void => void out.push(doc);
  documents.forEach((doc, i) => {
    if ('error' in doc) out.push({ document: i + 1, error: `invalid YAML: ${doc.error}` });
    else objectsOfDocument(i + 1, doc.value, add);
  });
  return out;
}

/** The objects of one document's value (`document` is its number), in order: none when it is empty, a List's items, or the value. */
export function objectsOfDocument(document: number, value: unknown, add: (doc: ManifestDocument) => void): void {
  if (value === null || value === undefined) return;
  if (isMapping(value) && typeof value['kind'] === 'string' && value['kind'].endsWith('List') && Array.isArray(value['items'])) {
    // Items of a typed list (`ServiceList`, as the API returns) may leave out their own kind.
    const itemKind = value['kind'] === 'List' ? undefined : value['kind'].slice(0, -'List'.length);
    value['items'].forEach((item: unknown, i: number) => {
      const object = itemKind !== undefined && isMapping(item) && item['kind'] === undefined ? { apiVersion: value['apiVersion'], kind: itemKind, ...item } : item;
      if (object !== null && object !== undefined) add({ document, item: i, object });
    });
    return;
  }
  add({ document, object: value });
}
