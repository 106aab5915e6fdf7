// The streams of one connection by id, with the stream-id rules of RFC 9113 §5.1.1 and the concurrency counts.

import { MAX_STREAM_ID } from './constants.ts';
import { RecentStreamIds } from './recent-stream-ids.ts';
import { Stream } from './stream.ts';

export class StreamTable {
  /** Streams we reset, so that frames the peer sent before it saw our RST_STREAM are ignored. */
  readonly resetByUs = new RecentStreamIds(4096);
  private readonly byId = new Map<number, Stream>();
  /** Low bit of the ids the peer opens: odd when we are the server. */
  private readonly peerParity: number;
  private nextOwnId: number;
  private highestPeerId = 0;
  /** Peer streams above this id are ignored after our final GOAWAY; MAX until then. */
  private acceptPeerUpTo = MAX_STREAM_ID;
  private peerActive = 0;
  private ownActive = 0;

  constructor(role: 'server' | 'client') {
    this.nextOwnId = role === 'client' ? 1 : 2;
    this.peerParity = role === 'server' ? 1 : 0;
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: number): Stream | undefined {
    return this.byId.get(id);
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  values(): MapIterator<Stream> {
    return this.byId.values();
  }

  /** Whether we may open another stream: below the peer's concurrency limit and with ids left. */
  canOpen(peerLimit: number): boolean {
    return this.ownActive < peerLimit && this.nextOwnId <= MAX_STREAM_ID;
  }

  /** Opens our next stream, counted against the peer's limit. */
  open(sendWindow: number, receiveWindow: number): Stream {
    const stream = new Stream(this.nextOwnId, false, sendWindow, receiveWindow);
    this.nextOwnId += 2;
    this.byId.set(stream.id, stream);
    this.ownActive++;
    return stream;
  }

  /** Registers a stream the peer opened, counted against our limit. */
  addPeer(stream: Stream): void {
    this.byId.set(stream.id, stream);
    this.peerActive++;
  }

  /** Removes a stream; false when it was not (or no longer) in the table. */
  remove(stream: Stream): boolean {
    if (!this.byId.delete(stream.id)) return false;
    if (stream.openedByPeer) this.peerActive--;
    else this.ownActive--;
    return true;
  }

  /** Empties the table (the connection closed) and returns the streams that were in it. */
  removeAll(): Stream[] {
    const open = [...this.byId.values()];
    this.byId.clear();
    return open;
  }

  get peerActiveCount(): number {
    return this.peerActive;
  }

  get highestPeerStreamId(): number {
    return this.highestPeerId;
  }

  /** A new peer stream id was seen (ids only grow); later HEADERS at or below it are not new streams. */
  notePeerStream(id: number): void {
    this.highestPeerId = id;
  }

  isPeerInitiated(id: number): boolean {
    return (id & 1) === this.peerParity;
  }

  /** An id neither side has used yet: frames other than HEADERS and PRIORITY on it are connection errors. */
  isIdle(id: number): boolean {
    return this.isPeerInitiated(id) ? id > this.highestPeerId : id >= this.nextOwnId;
  }

  /** Our final GOAWAY: peer streams above the highest seen so far are ignored from now on. Returns that id. */
  stopAcceptingPeerStreams(): number {
    this.acceptPeerUpTo = this.highestPeerId;
    return this.acceptPeerUpTo;
  }

  get finalGoawaySent(): boolean {
    return this.acceptPeerUpTo !== MAX_STREAM_ID;
  }

  /** A peer stream id above our final GOAWAY's last-stream-id: its frames are ignored (RFC 9113 §6.8). */
  aboveFinalGoaway(id: number): boolean {
    return id > this.acceptPeerUpTo;
  }
}
