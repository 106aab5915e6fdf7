// What one preflight check found: ok, or a problem with what to do about it — one report line each.

/** One line of the report. `what` names the thing checked (and, when ok, what was found); a problem says what to do. */
export type CheckLine =
  | { readonly status: 'ok'; readonly what: string }
  | { readonly status: 'fail'; readonly what: string; readonly problem: string; readonly fix: string };

export function ok(what: string): CheckLine {
  return { status: 'ok', what };
}

export function fail(what: string, problem: string, fix: string): CheckLine {
  return { status: 'fail', what, problem, fix };
}

/** The first line of an error's message, without a trailing newline: enough to say what went wrong on one line. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.trim().split('\n')[0] ?? '';
}
