import { parentPort, workerData } from 'node:worker_threads';
import { parseManifest } from './manifest-parser.js';
import type { ParseReply, ParseRequest, ReadyReply } from './manifest-parse-messages.js';
import type { ParseWorkerData } from './manifest-parse-spawn.js';
import { manifestToJson } from './manifest-parse-writer.js';
import { warmUpManifestParser } from './manifest-parse-warm-up.js';

// The thread that reads manifest files for ManifestParseThread: one request at a time, the
// entries sent back as JSON text where it carries them exactly (see manifest-parse-wire.ts).

/** Started ahead of its files: warms up, a few sample reads per turn, until the first file comes. */
let warming = (workerData as ParseWorkerData | undefined)?.warmUp === true;

parentPort?.on('message', (request: ParseRequest) => {
  warming = false;
  let reply: ParseReply;
  try {
    const json = request.json === true ? manifestToJson(request.text, request.fileName, request.options) : undefined;
    reply = json === undefined ? { id: request.id, entries: parseManifest(request.text, request.fileName, undefined, request.options) } : { id: request.id, json };
  } catch (err) {
    reply = { id: request.id, error: (err as Error).message };
  }
  parentPort!.postMessage(reply);
});
parentPort?.postMessage({ ready: true } satisfies ReadyReply);

/**
 * The first files of a start-up were read with cold code: V8 optimises the reader only after
 * thousands of calls, and the first 4 of 10 files of 1,000 Services took 600 of 990 ms. Read
 * here while the main thread still loads its modules, they cost the start nothing; bounded, so
 * that a thread whose files never come stops spending CPU.
 */
const WARM_UP_TURN_READS = 20;
const WARM_UP_MAX_TURNS = 50;
let turns = 0;
const warmUp = (): void => {
  if (!warming || turns++ >= WARM_UP_MAX_TURNS) return;
  for (let i = 0; i < WARM_UP_TURN_READS; i++) warmUpManifestParser();
  setImmediate(warmUp);
};
setImmediate(warmUp);
