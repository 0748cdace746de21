/**
 * Polls `check` until it returns a truthy value or the deadline passes: the only way tests wait.
 * Returns the truthy value; throws with `what` in the message on timeout. The default deadline is
 * generous: it only bounds how long a failing test takes, and a busy 2-core machine running two
 * test files at once (with network namespaces and child processes) can take seconds to do what
 * takes milliseconds alone.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000, intervalMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Polls a growing counter until it is above 0 and has not moved for `quietMs`; returns its value.
 * Throws with `what` in the message when it is still moving (or still 0) at the deadline.
 */
export async function waitUntilSteady(what: string, read: () => number, timeoutMs = 20_000, quietMs = 500): Promise<number> {
  let last = -1;
  let stableSince = Date.now();
  await waitFor(
    `${what} to stop growing`,
    () => {
      const now = read();
      if (now !== last) {
        last = now;
        stableSince = Date.now();
        return false;
      }
      return now > 0 && Date.now() - stableSince >= quietMs;
    },
    timeoutMs,
    25,
  );
  return last;
}
