// Undo steps run last-in first-out; every step runs even when an earlier one fails, and all failures are reported.

export class CleanupStack {
  #steps: Array<{ what: string; undo: () => Promise<void> | void }> = [];

  /** Registers how to undo something just created; returns a function that runs (and unregisters) it early. */
  push(what: string, undo: () => Promise<void> | void): () => Promise<void> {
    const step = { what, undo };
    this.#steps.push(step);
    return async () => {
      const index = this.#steps.indexOf(step);
      if (index < 0) return;
      this.#steps.splice(index, 1);
      await step.undo();
    };
  }

  get size(): number {
    return this.#steps.length;
  }

  async runAll(): Promise<void> {
    const errors: Error[] = [];
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      try {
        await step.undo();
      } catch (err) {
        errors.push(new Error(`cleanup of ${step.what} failed: ${String(err)}`, { cause: err }));
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanup steps failed`);
  }
}
