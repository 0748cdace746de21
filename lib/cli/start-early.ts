import { holdYoungGeneration } from '../internals/young-generation.js';
import { prestartManifestParseThread } from '../source/manifest-parse-spawn.js';
import { argvNamesManifests } from './argv-names-manifests.js';

// What start-up does before the rest of the program loads: bin/ imports this module first, and
// the modules after it take about 0.3 s to load (0.4-0.5 s on a busy machine).

/** Held until the first sync is done: see holdYoungGeneration(). */
export const releaseYoungGeneration = holdYoungGeneration();

if (argvNamesManifests(process.argv.slice(2))) prestartManifestParseThread();
