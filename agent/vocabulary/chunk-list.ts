// Lists of buffers that most owners never fill or fill with one chunk (a stream's queued DATA, a request body held
// for a retry): no array until the first chunk, then one of exactly one element.

/**
 * The empty list every owner starts with, shared: append only through withChunk(), which replaces it (it is frozen,
 * so a direct push throws instead of filling every owner's list). An array literal grows to 17 slots on its first
 * push; a stream that queues one chunk then paid for 16 it never used, on every request.
 */
export const NO_CHUNKS: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/** `list` with `chunk` appended: a new one-element list in place of NO_CHUNKS, else `list` itself. */
export function withChunk(list: Buffer[], chunk: Buffer): Buffer[] {
  if (list === NO_CHUNKS) return [chunk];
  list.push(chunk);
  return list;
}
