/** Waiting helpers: polling for a condition, sleeping, reading a stream to its end. */

export interface WaitOptions {
  /** Default 5000. */
  timeoutMs?: number;
  /** Default 25. */
  intervalMs?: number;
  /** Named in the timeout error, so a failing test says what it waited for. */
  description?: string;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `fn` until it returns a truthy value, and resolves with that value.
 * A throw counts as "not yet"; the last one is reported if time runs out.
 */
export async function waitUntil<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(opts.intervalMs ?? 25);
  }
  const what = opts.description ?? 'condition';
  const cause = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`, { cause: lastError });
}

/** Reads a stream (or any async iterable of chunks) to its end. */
export async function collect(stream: AsyncIterable<Buffer | string | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}
