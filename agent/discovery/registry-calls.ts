// The service index's calls into the registry for one event: every one is made, the first error is rethrown after.

/**
 * The registry rethrows the first error of its listeners after delivering every update. One failing call must not
 * leave the other keys of an event unapplied (the index already counts them as done), so every call is made and the
 * first error is rethrown at the end, for the informer to log.
 */
export class RegistryCalls {
  private failure: { error: unknown } | null = null;

  run(call: () => unknown): void {
    try {
      call();
    } catch (error) {
      this.failure ??= { error };
    }
  }

  finish(): void {
    if (this.failure !== null) throw this.failure.error;
  }
}
