// The state file on the node: read with a size bound, written atomically (a temp file in the same directory, renamed).

import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MeshliteError } from '../vocabulary/errors.ts';
import { decodePersistedView, encodePersistedView, type PersistedView, type ViewRejection } from './persisted-view.ts';

/**
 * Far above a real view (a cluster of 10 000 gRPC Service ports with 100 000 endpoints writes about 12 MB) and far
 * below what would hurt a node: a bigger file is not read, a bigger view not written.
 */
export const STATE_FILE_MAX_BYTES = 32 * 1024 * 1024;

export type FileRead = { state: 'missing' } | { state: 'too-large'; bytes: number } | { state: 'read'; text: string };

/** The file system as the state file needs it; injected so that tests can fail any step. */
export interface StateFileAccess {
  /** At most `maxBytes` of the file: 'too-large' when it holds more. */
  read(path: string, maxBytes: number): Promise<FileRead>;
  /** Creates the directory when it is missing. */
  writeFile(path: string, text: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** No error when there is nothing to remove. */
  remove(path: string): Promise<void>;
}

export type StateFileRead = { state: 'missing' } | { state: 'rejected'; rejection: ViewRejection } | { state: 'loaded'; view: PersistedView };

export interface StateFileOptions {
  path: string;
  files: StateFileAccess;
  /** Only a view written for this node is read. */
  nodeName: string;
  /** Tells this process's temp file from another's: two agents of one node (an upgrade) may write at once. */
  tempSuffix: string;
  maxBytes?: number;
}

export const nodeStateFileAccess: StateFileAccess = {
  read: async (path, maxBytes) => {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return { state: 'missing' };
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size > maxBytes) return { state: 'too-large', bytes: size };
      // One byte more than allowed: a file that grew since the stat is caught too.
      const buffer = Buffer.alloc(Math.min(size, maxBytes) + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === buffer.length) break;
      }
      if (length > maxBytes) return { state: 'too-large', bytes: length };
      return { state: 'read', text: buffer.toString('utf8', 0, length) };
    } finally {
      await handle.close();
    }
  },
  writeFile: async (path, text) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text, 'utf8');
  },
  rename: (from, to) => rename(from, to),
  remove: (path) => rm(path, { force: true }),
};

export class StateFile {
  private readonly options: StateFileOptions;

  constructor(options: StateFileOptions) {
    this.options = options;
  }

  get path(): string {
    return this.options.path;
  }

  private get maxBytes(): number {
    return this.options.maxBytes ?? STATE_FILE_MAX_BYTES;
  }

  /** Never throws: a file that cannot be read or used is a rejection with its code. */
  async read(): Promise<StateFileRead> {
    let read: FileRead;
    try {
      read = await this.options.files.read(this.options.path, this.maxBytes);
    } catch (error) {
      return { state: 'rejected', rejection: { code: 'ML_STATE_FILE_UNREADABLE', reason: messageOf(error) } };
    }
    if (read.state === 'missing') return read;
    if (read.state === 'too-large') {
      return { state: 'rejected', rejection: { code: 'ML_STATE_FILE_TOO_LARGE', reason: `${read.bytes} bytes or more, above the limit of ${this.maxBytes}` } };
    }
    const decoded = decodePersistedView(read.text, this.options.nodeName);
    return decoded.ok ? { state: 'loaded', view: decoded.view } : { state: 'rejected', rejection: decoded.rejection };
  }

  /**
   * Replaces the file with `view` in one step: readers see the old file or the new one, never a part. Returns the
   * bytes written; throws a StateFileWriteError (its code says why), leaving no temp file behind.
   */
  async write(view: PersistedView): Promise<number> {
    const { path, files, tempSuffix } = this.options;
    const text = encodePersistedView(view);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.maxBytes) {
      throw new StateFileWriteError('ML_STATE_FILE_TOO_LARGE', `the view takes ${bytes} bytes, above the limit of ${this.maxBytes}; not written`);
    }
    const temp = `${path}.${tempSuffix}.tmp`;
    try {
      await files.writeFile(temp, text);
      await files.rename(temp, path);
      return bytes;
    } catch (error) {
      await files.remove(temp).catch(() => {});
      throw new StateFileWriteError('ML_STATE_FILE_WRITE_FAILED', messageOf(error), { cause: error });
    }
  }
}

/** Writing the view failed; `code` is ML_STATE_FILE_TOO_LARGE or ML_STATE_FILE_WRITE_FAILED. */
export class StateFileWriteError extends MeshliteError {}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
