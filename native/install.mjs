// Builds the optional native data paths with the node-gyp that npm bundles: UDP sessions
// (native/kup_udp.c) and TCP relays (native/kup_tcp.c), each on its own, so that one that fails to
// build leaves the other. It never fails the install: without a compiler, headers or Linux, the
// proxy runs on its JavaScript data paths (lib/internals/udp-native.ts and tcp-native.ts find no
// addon and say why).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const ADDONS = [
  { target: 'kup_udp', what: 'UDP', off: process.env.KUP_UDP_NATIVE === '0' ? 'KUP_UDP_NATIVE=0' : undefined },
  { target: 'kup_tcp', what: 'TCP', off: process.env.KUP_TCP_NATIVE === '0' ? 'KUP_TCP_NATIVE=0' : undefined },
];

function skip(what, reason) {
  console.warn(`kube-userspace-proxy: native ${what} data path not built (${reason}); the JavaScript data path is used`);
}

function run(args) {
  // A step that cannot finish in two minutes (headers to download offline, say) is given up.
  const result = spawnSync(process.execPath, [gyp, ...args, '--directory', here], { stdio: 'inherit', timeout: 120_000 });
  return result.status === 0 ? undefined : (result.error?.message ?? `node-gyp exited with ${result.status ?? result.signal}`);
}

function main() {
  const wanted = ADDONS.filter((a) => {
    if (a.off !== undefined) skip(a.what, a.off);
    return a.off === undefined;
  });
  if (wanted.length === 0) return;
  let reason;
  if (process.platform !== 'linux') reason = `not Linux: ${process.platform}`;
  else if (gyp === undefined || !existsSync(gyp)) reason = 'node-gyp not found';
  else reason = run(['clean']) ?? run(['configure']);
  if (reason !== undefined) {
    for (const a of wanted) skip(a.what, reason);
    return;
  }
  // One make target per addon (node-gyp passes the name to make): a failure stops only its own.
  for (const a of wanted) {
    const failed = run(['build', a.target]);
    if (failed !== undefined) skip(a.what, failed);
  }
}

main();
