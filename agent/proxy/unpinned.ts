// DATA payloads are views into the reads they arrived in (a read is up to 64 KiB). A payload that waits in the relay
// (its endpoint or client does not read) would keep its whole read alive, and the budgets count only the payload: a
// 5-byte frame could pin 64 KiB, four waiting 16 KiB frames four reads. The callers copy only what will wait, so the
// copy costs nothing while endpoints and clients keep up.

/** Payloads up to this size (our SETTINGS_MAX_FRAME_SIZE) are copied when their read is more than twice as large. */
const COPY_BELOW = 16 * 1024;

export function unpinned(data: Buffer): Buffer {
  if (data.length === 0 || data.length > COPY_BELOW || data.buffer.byteLength <= 2 * data.length) return data;
  return Buffer.from(data);
}
