// Collects one header block from a HEADERS frame and its CONTINUATION frames, bounded in size and frame count.

/** A peer may split a block over many frames, but not without limit (CONTINUATION floods). */
const MAX_FRAMES_PER_BLOCK = 256;

const EMPTY = Buffer.alloc(0);

/**
 * The block is a range of one buffer: the HEADERS frame's own bytes when it is the whole block (the usual case, with
 * no copy and no object), else the fragments joined.
 */
export class HeaderBlockAssembler {
  active = false;
  streamId = 0;
  flags = 0;
  /** The HEADERS frame declared a dependency on its own stream: decode the block, then refuse the stream. */
  selfDependent = false;
  /** After finish(): the block is `block[blockStart, blockEnd)`, valid until the next begin(). */
  block: Buffer = EMPTY;
  blockStart = 0;
  blockEnd = 0;
  /** CONTINUATION fragments after the first one; empty while the HEADERS frame is the whole block. */
  private fragments: Buffer[] = [];
  private length = 0;
  private frames = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** The HEADERS frame's fragment is `input[start, end)`. */
  begin(streamId: number, flags: number, input: Buffer, start: number, end: number, selfDependent: boolean): void {
    this.active = true;
    this.streamId = streamId;
    this.flags = flags;
    this.selfDependent = selfDependent;
    this.block = input;
    this.blockStart = start;
    this.blockEnd = end;
    this.length = end - start;
    this.frames = 1;
  }

  /** Adds a CONTINUATION fragment `input[start, end)`; false when the block grew past its limits. */
  append(input: Buffer, start: number, end: number): boolean {
    if (this.fragments.length === 0) this.fragments.push(this.block.subarray(this.blockStart, this.blockEnd));
    this.fragments.push(input.subarray(start, end));
    this.length += end - start;
    this.frames++;
    return this.length <= this.maxBytes && this.frames <= MAX_FRAMES_PER_BLOCK;
  }

  /** The block is complete: `block`, `blockStart` and `blockEnd` say where it is; the assembler is idle again. */
  finish(): void {
    if (this.fragments.length > 0) {
      this.block = Buffer.concat(this.fragments, this.length);
      this.blockStart = 0;
      this.blockEnd = this.length;
      this.fragments = [];
    }
    this.active = false;
    this.length = 0;
  }

  /** Lets go of the peer's bytes once the block was decoded. */
  release(): void {
    this.block = EMPTY;
  }
}
