import type { WebSocket } from 'ws';
import type { LiveCredential } from '../accounts/authenticate.ts';
import type { UserId } from '../kernel/ids.ts';
import { CLOSE, type ServerFrame } from './frames.ts';

export interface ConnectionLimits {
  /** Frames per second a client may send; bursts of twice that. */
  framesPerSecond: number;
  /** Bytes queued for the client before it counts as a slow consumer. */
  maxBufferedBytes: number;
}

/** Every frame is JSON text, also when handed over as a Buffer (never compressed: see plugin.ts). */
const TEXT = { binary: false } as const;

/** The most a WebSocket frame header takes from server to client (no mask). */
const MAX_FRAME_HEADER = 10;

/** How long a closing socket may take to say goodbye before it is cut. */
const CLOSE_TIMEOUT_MS = 5_000;
/**
 * The same while the server stops: one client that does not read must not hold a graceful stop
 * for the whole CLOSE_TIMEOUT_MS (measured: 5.3 s per stop with one such client, 0.3 s without).
 */
export const SHUTDOWN_CLOSE_TIMEOUT_MS = 1_000;
/** How a socket cut for not answering a ping is counted (no close frame goes out: 1006, abnormal). */
const CLOSE_GONE = 1006;
/** Frames refused for rate in a row before the socket is closed as flooding. */
const FLOOD_LIMIT = 200;

/**
 * One client's socket on this server: the one piece of state that must live here. It sends frames
 * without ever waiting for a slow reader (past the buffer limit the reader is closed, 4008, and
 * resumes by seq elsewhere or here), and meters what the client sends (a token bucket).
 */
export class Connection {
  readonly userId: UserId;
  readonly username: string;
  /** Rooms this socket is subscribed to. */
  readonly rooms = new Set<string>();
  #tokens: number;
  #refilledAt = performance.now();
  #refusedInARow = 0;
  #closing = false;
  /** Bytes handed to the corked wire this tick: queued by this server, not unread by the client. */
  #corkedBytes = 0;
  #corked = false;
  /** The client answered the last ping (browsers and ws answer by themselves). */
  #answered = true;
  readonly #uncork = () => {
    this.#corked = false;
    this.#corkedBytes = 0;
    this.wire?.uncork();
  };

  constructor(
    private readonly socket: WebSocket,
    readonly credential: LiveCredential,
    private readonly limits: ConnectionLimits,
    /** Told of each close this server decides (by code), for the counts the cluster view shows. */
    private readonly onServerClose: (code: number) => void = () => {},
    /**
     * The TCP socket under `socket`, when known: the frames it is sent in one tick (an ack and the
     * sender's own message, a wake-up carrying several messages) leave in one write, not one each.
     */
    private readonly wire?: { cork(): void; uncork(): void },
  ) {
    this.userId = credential.principal.userId;
    this.username = credential.principal.username;
    this.#tokens = limits.framesPerSecond * 2;
    socket.on('pong', () => (this.#answered = true));
  }

  /**
   * Once per ping interval: a client that has not answered the previous ping is gone without a
   * goodbye (power, network, a NAT that forgot it). Its socket is cut, which takes its presence
   * offline now rather than when TCP gives up on it (many minutes later).
   */
  checkAlive(): void {
    if (!this.#answered) {
      this.onServerClose(CLOSE_GONE);
      this.socket.terminate();
      return;
    }
    this.#answered = false;
    this.socket.ping();
  }

  get open(): boolean {
    return !this.#closing && this.socket.readyState === this.socket.OPEN;
  }

  send(frame: ServerFrame): void {
    this.sendRaw(JSON.stringify(frame));
  }

  /**
   * Sends an already serialised frame: a room hub encodes a frame once (JSON, then UTF-8) for all
   * its subscribers; a Buffer goes out as a text frame as it is, with no copy per socket.
   */
  sendRaw(frame: string | Buffer): void {
    if (!this.open) return;
    if (this.socket.bufferedAmount - this.#corkedBytes > this.limits.maxBufferedBytes) {
      this.close(CLOSE.slowConsumer, 'slow consumer: resume with your last seq');
      return;
    }
    if (this.wire) {
      if (!this.#corked) {
        this.#corked = true;
        this.wire.cork();
        process.nextTick(this.#uncork);
      }
      this.#corkedBytes += MAX_FRAME_HEADER + (typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length);
    }
    this.socket.send(frame, TEXT);
  }

  /** True when the client may send one more frame now; a refused frame costs nothing else. */
  admit(): boolean {
    const now = performance.now();
    const rate = this.limits.framesPerSecond;
    this.#tokens = Math.min(rate * 2, this.#tokens + ((now - this.#refilledAt) / 1000) * rate);
    this.#refilledAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      this.#refusedInARow = 0;
      return true;
    }
    if (++this.#refusedInARow >= FLOOD_LIMIT) this.close(CLOSE.flooding, 'too many frames');
    return false;
  }

  close(code: number, reason: string, timeoutMs = CLOSE_TIMEOUT_MS): void {
    if (this.#closing) return;
    this.#closing = true;
    this.onServerClose(code);
    this.socket.close(code, reason);
    // A client that does not read never takes the close frame: cut it after a while.
    setTimeout(() => this.socket.terminate(), timeoutMs).unref();
  }
}
