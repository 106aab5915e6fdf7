// A listener that cannot bind stops the agent with ML_LISTEN_FAILED, naming what it is and where.

import { MeshliteError } from './errors.ts';

export class ListenError extends MeshliteError {
  constructor(message: string) {
    super('ML_LISTEN_FAILED', message);
  }
}

/** Resolves as `bound` does; a failure becomes a ListenError naming the listener (`what`) and its address. */
export async function listeningOrFail<T>(what: string, where: string, bound: Promise<T>): Promise<T> {
  try {
    return await bound;
  } catch (error) {
    throw new ListenError(`cannot listen on ${where} (${what}): ${(error as Error).message}`);
  }
}
