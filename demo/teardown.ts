// What the demo started, undone last-first when it stops, each step saying what it stopped.

interface Step {
  /** Undoes one thing and returns what to print ('' for nothing). */
  undo: () => Promise<string>;
  /** Synchronous last resort, for an exit that skips run(): kill by PID, remove a directory. */
  now?: () => void;
}

export class Teardown {
  private readonly steps: Step[] = [];

  add(undo: () => Promise<string>, now?: () => void): void {
    this.steps.push(now === undefined ? { undo } : { undo, now });
  }

  /** Runs every step, last added first, even after one fails; writes "stopping: a; b; c". False if a step failed. */
  async run(write: (text: string) => void): Promise<boolean> {
    let ok = true;
    let said = 0;
    const say = (text: string): void => {
      if (text === '') return;
      write(`${said++ === 0 ? ' ' : '; '}${text}`);
    };
    write('\nstopping:');
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      try {
        say(await step.undo());
      } catch (error) {
        ok = false;
        say(`FAILED: ${(error as Error).message}`);
      }
    }
    write('\n');
    return ok;
  }

  /** For process.on('exit'): whatever run() did not undo, undone synchronously, as well as that can be. */
  lastResort(): void {
    for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
      try {
        step.now?.();
      } catch {
        // Nothing more can be done on the way out; the next run's sweep removes what namespaces are left.
      }
    }
  }
}
