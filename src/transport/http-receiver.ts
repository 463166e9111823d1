// One pending receive request of an HTTP session (xhr_streaming or xhr): the uWS response the
// session's frames are written to. It keeps the rules uWS imposes on a response (answer once, never
// touch it after abort or end, cork writes made outside its own handler) and reports backpressure.
import type { HttpResponse } from 'uWebSockets.js';

export type Headers = readonly (readonly [string, string])[];

export class Receiver {
  /** Characters written so far: pusher-js counts the response text it has read (spec §13.3). */
  written = 0;
  /** ms timestamp of the last write, or of the request when nothing was written yet */
  lastWriteAt: number;
  /** Ended or aborted: the response must not be touched again. */
  done = false;
  /** Bytes of the write uWS could not hand to the socket; further writes wait for onWritable. */
  blockedBytes = 0;
  /** Called once when the client goes away (abort) before the response ended. */
  onGone?: () => void;
  /** Called when a blocked response can take more. */
  onDrained?: () => void;
  private started = false;
  /** The write in progress, for the one bound cork callback (no closure per write). */
  private text = '';
  private bytes = 0;
  private readonly corkedWrite = (): void => {
    this.start();
    if (!this.res.write(this.text)) this.blockedBytes = this.bytes;
    this.text = '';
  };

  constructor(
    private readonly res: HttpResponse,
    /** xhr_streaming: many writes; xhr (polling): one answer, then the client asks again. */
    readonly streaming: boolean,
    private readonly headers: Headers,
    now: number,
  ) {
    this.lastWriteAt = now;
    // uWS requires an abort handler on every response not answered inside its request handler.
    res.onAborted(() => {
      this.done = true;
      this.onGone?.();
    });
    res.onWritable(() => {
      this.blockedBytes = 0;
      this.onDrained?.();
      return true;
    });
  }

  /** Writes part of a streaming response; `text` is never empty (an empty chunk would end it). */
  write(text: string, bytes: number, now: number): void {
    if (this.done) return;
    this.written += text.length;
    this.lastWriteAt = now;
    this.text = text;
    this.bytes = bytes;
    this.res.cork(this.corkedWrite);
  }


  /** Ends the response, with a last part. */
  end(text = ''): void {
    if (this.done) return;
    this.done = true;
    this.written += text.length;
    this.res.cork(() => {
      this.start();
      this.res.end(text);
    });
  }

  /** Answers with an HTTP error instead; once something was written, the response just ends. */
  reject(status: string, text: string): void {
    if (this.started) return this.end();
    if (this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.res.writeStatus(status);
      for (const [k, v] of this.headers) this.res.writeHeader(k, v);
      this.res.end(text);
    });
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeStatus('200 OK');
    for (const [k, v] of this.headers) this.res.writeHeader(k, v);
  }
}
