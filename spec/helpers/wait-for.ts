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
