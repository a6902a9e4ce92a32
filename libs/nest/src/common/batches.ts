/** Runs `task` over `items`, at most `concurrency` at a time; rejects with the first failure. */
export async function inBatches<T>(
  items: Iterable<T>,
  concurrency: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let batch: Promise<void>[] = [];
  for (const item of items) {
    batch.push(task(item));
    if (batch.length >= concurrency) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
}
