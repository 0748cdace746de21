// Before anything is timed: the bytes must arrive intact. Six parallel 1 MiB downloads through a
// target, two of them read slowly (about 4 MB/s) so that the target has to hold back the
// backend (backpressure); each body's SHA-256 must equal the file's.
import crypto from 'node:crypto';
import http from 'node:http';

function download(host, port, slow) {
  return new Promise((resolve) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    const req = http.get({ host, port, path: '/large.bin', agent: false, timeout: 15_000 }, (res) => {
      res.on('data', (chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (slow) {
          res.pause();
          setTimeout(() => res.resume(), Math.ceil(chunk.length / 4096));
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, bytes, sha256: hash.digest('hex') }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ error: err.message }));
  });
}

/** Returns { intact, total, problems: [...] }. */
export async function checkDownloads(host, port, sha256) {
  const runs = await Promise.all([false, false, false, false, true, true].map((slow) => download(host, port, slow)));
  const problems = [];
  let intact = 0;
  for (const r of runs) {
    if (r.error) problems.push(r.error);
    else if (r.status !== 200) problems.push(`HTTP ${r.status}`);
    else if (r.sha256 !== sha256) problems.push(`corrupt body (${r.bytes} bytes)`);
    else intact++;
  }
  return { intact, total: runs.length, problems };
}
