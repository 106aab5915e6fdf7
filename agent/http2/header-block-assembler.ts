// Collects one header block from a HEADERS frame and its CONTINUATION frames, bounded in size and frame count.

/** A peer may split a block over many frames, but not without limit (CONTINUATION floods). */
const MAX_FRAMES_PER_BLOCK = 256;

export class HeaderBlockAssembler {
  active = false;
  streamId = 0;
  flags = 0;
  /** The HEADERS frame declared a dependency on its own stream: decode the block, then refuse the stream. */
  selfDependent = false;
  private fragments: Buffer[] = [];
  private length = 0;
  private frames = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  begin(streamId: number, flags: number, fragment: Buffer, selfDependent: boolean): void {
    this.active = true;
    this.streamId = streamId;
    this.flags = flags;
    this.selfDependent = selfDependent;
    this.fragments = [fragment];
    this.length = fragment.length;
    this.frames = 1;
  }

  /** Adds a CONTINUATION fragment; false when the block grew past its limits. */
  append(fragment: Buffer): boolean {
    this.fragments.push(fragment);
    this.length += fragment.length;
    this.frames++;
    return this.length <= this.maxBytes && this.frames <= MAX_FRAMES_PER_BLOCK;
  }

  /** The whole block; the assembler is idle again afterwards. */
  finish(): Buffer {
    const block = this.fragments.length === 1 ? this.fragments[0] : Buffer.concat(this.fragments, this.length);
    this.active = false;
    this.fragments = [];
    this.length = 0;
    return block;
  }
}
