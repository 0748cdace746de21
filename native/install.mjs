// Builds the optional native UDP data path (native/kup_udp.c) with the node-gyp that npm bundles.
// It never fails the install: without a compiler, headers or Linux, the proxy runs on its
// JavaScript data path (lib/internals/udp-native.ts finds no addon; udpNativeUnavailableReason() says why).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const gyp = process.env.npm_config_node_gyp;

function skip(reason) {
  console.warn(`kube-userspace-proxy: native UDP data path not built (${reason}); the JavaScript data path is used`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`not Linux: ${process.platform}`);
if (process.env.KUP_UDP_NATIVE === '0') skip('KUP_UDP_NATIVE=0');
if (gyp === undefined || !existsSync(gyp)) skip('node-gyp not found');
// A build that cannot finish in two minutes (headers to download offline, say) is given up.
const result = spawnSync(process.execPath, [gyp, 'rebuild', '--directory', here], { stdio: 'inherit', timeout: 120_000 });
if (result.status !== 0) skip(result.error?.message ?? `node-gyp exited with ${result.status ?? result.signal}`);
