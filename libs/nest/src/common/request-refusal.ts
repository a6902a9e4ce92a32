const UNDO = Symbol('undoOnRefusal');

type Undoable = { [UNDO]?: Array<() => void> };

/**
 * Leaves on a request what to undo should a later guard refuse it: a guard that did work for the
 * request (remembered a verified token) registers here, and the guard that refuses calls `refused`.
 */
export function undoOnRefusal(request: object, undo: () => void): void {
  ((request as Undoable)[UNDO] ??= []).push(undo);
}

/** The request is refused: undoes what earlier guards registered for it. */
export function refused(request: object): void {
  for (const undo of (request as Undoable)[UNDO]?.splice(0) ?? []) {
    undo();
  }
}
