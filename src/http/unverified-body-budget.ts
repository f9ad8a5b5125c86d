import type { IncomingMessage } from 'node:http';
import { InvalidInput, PayloadTooLarge, RequestTimeout, Unavailable } from '../errors.ts';

/**
 * GitHub gives up on a delivery after 10 s and Slack on a request after 3 s: a
 * body still arriving after 10 s is nobody's real request, and it should not keep
 * its share of the budget while it trickles in.
 */
const BODY_DEADLINE_MS = 10_000;

/** `25 MB`: how a limit is named in messages. */
export const megabytes = (bytes: number): string => `${Number((bytes / 2 ** 20).toFixed(1))} MB`;

export interface UnverifiedBody {
  /**
   * The body as it arrived, in pieces: a signature is computed over them in
   * turn, and only a verified body is joined into one buffer (joining first
   * would hold a forged body twice).
   */
  parts: Buffer[];
  /** Gives the body's bytes back to the budget; call it once the signature is checked. */
  release(): void;
}

/**
 * The bytes of request bodies buffered before their signature is checked, across
 * the whole process (GitHub webhooks and Slack requests share it). Anyone can
 * send a body that looks signed; without this bound, twenty forged 24 MB posts
 * at once would hold half a gigabyte until each one's HMAC fails. A body's
 * declared Content-Length is reserved before a byte of it is read, so a request
 * that cannot fit is refused at once; a chunked body is counted as it arrives.
 */
export class UnverifiedBodyBudget {
  private taken = 0;

  constructor(
    readonly bytes: number,
    private readonly deadlineMs = BODY_DEADLINE_MS,
  ) {}

  /** Bytes reserved by bodies being read or not yet verified. */
  get inFlight(): number {
    return this.taken;
  }

  /**
   * Reads the body of `req`, at most `limit` bytes. Rejects with a typed error
   * (413 over the limit, 503 over the budget, 408 too slow, 400 aborted) after
   * which the rest of the body is discarded unread; the caller answers and should
   * close the connection.
   */
  read(req: IncomingMessage, limit: number): Promise<UnverifiedBody> {
    const header = req.headers['content-length'];
    const declared = header === undefined ? null : Number(header);
    if (declared !== null && declared > limit) return Promise.reject(tooLarge(limit));
    if (declared !== null && !this.take(declared)) return Promise.reject(this.busy());
    let held = declared ?? 0;
    const release = () => {
      this.taken -= held;
      held = 0;
    };
    return new Promise((resolve, reject) => {
      let chunks: Buffer[] = [];
      let received = 0;
      const stop = () => {
        clearTimeout(timer);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onAborted);
        req.off('close', onClose);
      };
      const fail = (err: Error) => {
        stop();
        chunks = [];
        release();
        // Whatever else arrives is thrown away as it comes, never buffered.
        req.resume();
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        received += chunk.length;
        if (received > limit) return fail(tooLarge(limit));
        if (declared === null) {
          if (!this.take(chunk.length)) return fail(this.busy());
          held += chunk.length;
        }
        chunks.push(chunk);
      };
      const onEnd = () => {
        stop();
        resolve({ parts: chunks, release });
      };
      const onAborted = () => fail(new InvalidInput('the request was aborted before its body arrived'));
      const onClose = () => {
        if (!req.complete) onAborted();
      };
      const timer = setTimeout(
        () => fail(new RequestTimeout(`the request body did not arrive within ${this.deadlineMs / 1000} s`)),
        this.deadlineMs,
      );
      timer.unref();
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onAborted);
      req.on('close', onClose);
    });
  }

  private take(bytes: number): boolean {
    if (this.taken + bytes > this.bytes) return false;
    this.taken += bytes;
    return true;
  }

  private busy(): Unavailable {
    const seconds = Math.ceil(this.deadlineMs / 1000);
    return new Unavailable(
      `too many unverified request bodies are arriving at once (over ${megabytes(this.bytes)}); try again in ${seconds} s`,
      seconds,
    );
  }
}

function tooLarge(limit: number): PayloadTooLarge {
  return new PayloadTooLarge(`the request body is over the ${megabytes(limit)} limit`);
}
