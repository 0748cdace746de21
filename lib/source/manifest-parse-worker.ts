import { parentPort } from 'node:worker_threads';
import { parseManifest } from './manifest-parser.js';
import type { ParseReply, ParseRequest, ReadyReply } from './manifest-parse-messages.js';

// The thread that reads manifest files for ManifestParseThread: one request at a time, the
// entries sent back as plain data (ServiceSpec and EndpointSliceSpec are plain objects).
parentPort?.on('message', (request: ParseRequest) => {
  let reply: ParseReply;
  try {
    reply = { id: request.id, entries: parseManifest(request.text, request.fileName, undefined, request.options) };
  } catch (err) {
    reply = { id: request.id, error: (err as Error).message };
  }
  parentPort!.postMessage(reply);
});
parentPort?.postMessage({ ready: true } satisfies ReadyReply);
