import type { ChildProcess } from 'node:child_process';
import { TestEnvironment } from 'jest-environment-node';
import { CHILDREN_KEY, killAndWait } from './children';

/**
 * Node's test environment, and a check when a test file ends: every process it started
 * (`owned`, test/support/children.ts) has been stopped. What is left is killed, so that Jest can
 * exit, and the file fails naming it, so that the leak is fixed where it is.
 */
export default class ChildProcessCheckingEnvironment extends TestEnvironment {
  override async teardown(): Promise<void> {
    // A Map of the test file's realm: not an `instanceof Map` of this one.
    const children = this.global[CHILDREN_KEY] as Map<ChildProcess, string> | undefined;
    const left = children === undefined ? [] : [...children];
    await Promise.all(left.map(([child]) => killAndWait(child)));
    await super.teardown();
    if (left.length > 0) {
      const names = left.map(([child, name]) => `${name} (pid ${child.pid})`).join(', ');
      throw new Error(
        `this test file left running: ${names}. Stop every process a test starts in its afterAll.`,
      );
    }
  }
}
