import type { ClassifyOptions, ManifestEntry } from './manifest-parser.js';

// The messages between ManifestParseThread and its thread (manifest-parse-worker.ts).

/** To the parse thread: one file. */
export interface ParseRequest {
  readonly id: number;
  readonly text: string;
  readonly fileName: string;
  readonly options: ClassifyOptions;
  /** Reply with `json` where it carries the entries exactly (see manifest-parse-wire.ts); else with `entries`. */
  readonly json?: boolean;
}

/** From the parse thread: the file's entries (as they are, or as JSON text), or why parseManifest threw. */
export type ParseReply = { readonly id: number; readonly entries: ManifestEntry[] } | { readonly id: number; readonly json: string } | { readonly id: number; readonly error: string };

/** From the parse thread, once, when its modules are loaded. */
export interface ReadyReply {
  readonly ready: true;
}
