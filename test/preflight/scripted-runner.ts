// A recording command runner that answers each command line from a script: a result, or "cannot be started" (ENOENT).

import type { CommandResult, CommandRunner } from '../../agent/intercept/command-runner.ts';

export interface ScriptedCall {
  /** `file arg…`. */
  readonly command: string;
  readonly input?: string;
}

/** `missing`: the command cannot be started (spawn … ENOENT), as a command absent from PATH. */
export type ScriptedAnswer = CommandResult | 'missing';

export class ScriptedRunner {
  readonly calls: ScriptedCall[] = [];
  /** Answers by exact command line, then by file name; a command answered by neither exits 0 with no output. */
  private readonly answers = new Map<string, ScriptedAnswer>();

  answer(commandOrFile: string, answer: ScriptedAnswer): this {
    this.answers.set(commandOrFile, answer);
    return this;
  }

  readonly runner: CommandRunner = async (file, args, options) => {
    const command = [file, ...args].join(' ');
    this.calls.push(options?.input === undefined ? { command } : { command, input: options.input });
    const answer = this.answers.get(command) ?? this.answers.get(file) ?? { code: 0, stdout: '', stderr: '' };
    if (answer === 'missing') throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' });
    return answer;
  };

  commands(): string[] {
    return this.calls.map((call) => call.command);
  }
}

export function exited(code: number, stderr = '', stdout = ''): CommandResult {
  return { code, stdout, stderr };
}
