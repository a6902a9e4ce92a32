/**
 * Polls `condition` every 20 ms until it holds; rejects naming `what` after `timeoutMs`. The one
 * polling helper of the tests: wait on an outcome, with an explicit limit, never a bare sleep.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
