import type { ChildProcess } from 'node:child_process';

/** Where a test file's running children are kept: its global, which the test environment reads. */
export const CHILDREN_KEY = '__switchboardTestChildren';

/**
 * Registers a process a test file started, until it exits. A file that leaves one running would
 * otherwise keep Jest waiting for ever after the last result (its stderr pipe holds the event loop
 * on some Node versions): the test environment (test/support/environment.ts) kills what is left
 * when the file ends, and fails the file naming it.
 * @returns the same child
 */
export function owned<T extends ChildProcess>(child: T, name: string): T {
  const global = globalThis as { [CHILDREN_KEY]?: Map<ChildProcess, string> };
  const children = (global[CHILDREN_KEY] ??= new Map());
  children.set(child, name);
  child.once('exit', () => children.delete(child));
  return child;
}

/** SIGKILLs a child process (if it still runs) and resolves once it has exited. */
export async function killAndWait(child: ChildProcess | null): Promise<void> {
  if (child === null || child.exitCode !== null) {
    return;
  }
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
