import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { LogPage, LogQuery, LogSource } from './protocol.ts';

/** One line of an app's log as stored: the cursor, who wrote it, and Heroku's line. */
interface Entry {
  n: number;
  src: LogSource;
  dyno: string;
  line: string;
}

/** At most this many characters of one line are kept (a dyno printing a megabyte without a newline). */
const MAX_LINE = 10_000;

/** Heroku's timestamp: `2026-11-23T10:00:00.123456+00:00`. */
export function timestamp(at = new Date(), micros = 0): string {
  return `${at.toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}+00:00`;
}

/**
 * An app's log, as Heroku's Logplex keeps it: the last `capacity` lines of its
 * dynos, its router and flowops' own lines about it, in one stream, in memory
 * and appended to `<dir>/log.jsonl` (rewritten to the last `capacity` lines when
 * it has grown to twice that), so it survives a restart of the runtime.
 */
export class AppLog {
  private entries: Entry[] = [];
  private next = 1;
  private written = 0;
  private pending: Entry[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly file: string;

  constructor(
    dir: string,
    private readonly capacity: number,
  ) {
    this.file = path.join(dir, 'log.jsonl');
    if (!existsSync(this.file)) return;
    for (const text of readFileSync(this.file, 'utf8').split('\n')) {
      if (!text) continue;
      try {
        this.entries.push(JSON.parse(text) as Entry);
      } catch {
        /* a line cut short by a crash */
      }
    }
    this.entries = this.entries.slice(-capacity);
    this.next = (this.entries.at(-1)?.n ?? 0) + 1;
    this.written = this.entries.length;
  }

  /** Appends a line `app[web.1]: text` (or `flowops[router]: …`), stamped now. */
  append(src: LogSource, dyno: string, text: string): void {
    const now = performance.timeOrigin + performance.now();
    const line = `${timestamp(new Date(Math.floor(now)), Math.floor((now * 1000) % 1000))} ${src}[${dyno}]: ${text.slice(0, MAX_LINE)}`;
    const entry: Entry = { n: this.next++, src, dyno, line };
    this.entries.push(entry);
    // Trimmed in one go once it holds twice the capacity: no shifting on every line.
    if (this.entries.length >= this.capacity * 2) this.entries = this.entries.slice(-this.capacity);
    this.pending.push(entry);
    // Written in batches (a busy router adds a line per request): at most a tenth of a second later.
    if (this.pending.length >= 500) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), 100);
  }

  /** Appends the lines not written yet to the file (and rewrites it to the last `capacity` lines when it has grown to twice that). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    try {
      // Not recursive: a removed data dir is not made again.
      if (!existsSync(path.dirname(this.file))) mkdirSync(path.dirname(this.file));
      if (this.written + batch.length >= this.capacity * 2) {
        const tmp = `${this.file}.tmp`;
        const kept = this.kept();
        writeFileSync(tmp, kept.map((e) => `${JSON.stringify(e)}\n`).join(''));
        renameSync(tmp, this.file);
        this.written = kept.length;
      } else {
        appendFileSync(this.file, batch.map((e) => `${JSON.stringify(e)}\n`).join(''));
        this.written += batch.length;
      }
    } catch {
      // The data dir is going away (the runtime stops when it notices): the lines stay in memory.
    }
  }

  /** The last `capacity` lines. */
  private kept(): Entry[] {
    return this.entries.length > this.capacity ? this.entries.slice(-this.capacity) : this.entries;
  }

  /** The lines a query asks for, oldest first. */
  query(q: LogQuery): LogPage {
    const matches = this.kept().filter(
      (e) =>
        (q.after === undefined || e.n > q.after) &&
        (!q.source || e.src === q.source) &&
        (!q.dyno || e.dyno === q.dyno || e.dyno.startsWith(`${q.dyno}.`)),
    );
    const lines = q.after === undefined ? matches.slice(-(q.num ?? 100)) : matches;
    return { lines: lines.map((e) => e.line), next: this.entries.at(-1)?.n ?? q.after ?? 0 };
  }

  /** The last lines one dyno printed: what a crash report quotes. */
  lastOf(dyno: string, count: number): string[] {
    return this.kept()
      .filter((e) => e.dyno === dyno && e.src === 'app')
      .slice(-count)
      .map((e) => e.line);
  }
}

/**
 * Splits a stream's chunks into lines for the log: a partial line waits for the
 * rest of it (or is flushed when the stream ends).
 */
export function lineSplitter(emit: (line: string) => void): { write(chunk: Buffer): void; end(): void } {
  let partial = '';
  // A character cut between two chunks is kept whole.
  const decoder = new StringDecoder('utf8');
  return {
    write(chunk) {
      const text = partial + decoder.write(chunk);
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      if (partial.length > MAX_LINE) {
        lines.push(partial);
        partial = '';
      }
      for (const line of lines) emit(line.replace(/\r$/, ''));
    },
    end() {
      partial += decoder.end();
      if (partial) emit(partial);
      partial = '';
    },
  };
}
