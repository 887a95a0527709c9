// A request's body may name what the app then acts on besides its path and method: a POST's
// `_method` (a form, a multipart form or a JSON object: Rails, Laravel, Symfony, Spring;
// access/body-methods.ts), or the resources a WebDAV body names by `href` (a CalDAV multiget, a
// SEARCH's scope; access/body-paths.ts). The rules must allow the request for those too. Bodies
// stream (SPEC 4), so the body is not read before forwarding: it is scanned as it passes and only
// its last chunk is held back, so the app never has the whole body before what it names is judged.
// Allowed, the last chunk goes on; refused, the upstream request is aborted (the app never gets a
// complete request) and the client gets the refusal. Only where the body could change the decision.
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { PROXIED_METHODS } from './methods.js';

/** Every method a body could name that a rule could scope, POST aside. */
export const OVERRIDE_CANDIDATES: readonly string[] = PROXIED_METHODS.filter((method) => method !== 'POST');

/**
 * A body coding the scanner cannot see through (`gzip`: an app stack that inflates request bodies,
 * Apache's DEFLATE input filter, would read a `_method` the scan misses), or null. Browsers and
 * form and WebDAV clients send none.
 */
export function unreadableCoding(request: FastifyRequest): string | null {
  const coding = request.headers['content-encoding'];
  if (coding === undefined) return null;
  return coding.split(',').every((c) => c.trim().toLowerCase() === 'identity' || c.trim() === '') ? null : coding;
}

/** Reads a body chunk by chunk, keeping only what it needs, and says what the body names at its end. */
export interface BodyScanner<Scan> {
  /** False (optional) once the body is known to be refused: it is judged at once, not read on. */
  write(chunk: Buffer): boolean | void;
  end(): Promise<Scan>;
}

/** Answers once the body was scanned (or its scanner gave up): true refuses the request (the caller keeps why). */
export type BodyJudge<Scan> = (scan: Scan) => Promise<boolean>;

/** The refusal that ends the upstream request's body. */
class BodyRefused extends Error {
  constructor() {
    super('what the request body names is not allowed');
    this.name = 'BodyRefused';
  }
}

/** Passes every chunk on but the latest, which waits for the next one or for the judgement. */
class JudgedBody<Scan> extends Transform {
  #held: Buffer | null = null;
  readonly #scanner: BodyScanner<Scan>;
  readonly #judge: BodyJudge<Scan>;

  constructor(scanner: BodyScanner<Scan>, judge: BodyJudge<Scan>) {
    super();
    this.#scanner = scanner;
    this.#judge = judge;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // A scanner that has given up (too large, unreadable): judged now, the rest is not sent.
    if (this.#scanner.write(chunk) === false) return this.#judgeNow(callback, false);
    if (this.#held !== null) this.push(this.#held);
    this.#held = chunk;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#judgeNow(callback, true);
  }

  /** `atEnd` false: the scanner gave up before the end (no more chunks come), which refuses whatever the judge says. */
  #judgeNow(callback: TransformCallback, atEnd: boolean): void {
    this.#scanner
      .end()
      .then((scan) => this.#judge(scan))
      .then((refused) => {
        if (refused || !atEnd) return callback(new BodyRefused());
        if (this.#held !== null) this.push(this.#held);
        callback();
      }, callback);
  }
}

/** From now on the request's body (what http-proxy forwards) is scanned and judged as it streams. */
export function judgeBodyAsItStreams<Scan>(request: FastifyRequest, scanner: BodyScanner<Scan>, judge: BodyJudge<Scan>): void {
  // A request without a body (fastify parses none when there is nothing to read) names nothing.
  if (!(request.body instanceof Readable)) return;
  const source = request.body;
  const judged = new JudgedBody(scanner, judge);
  // Not pipeline(): a refusal must leave the client's request alone, its answer is still to come.
  source.once('error', (err) => judged.destroy(err));
  source.pipe(judged);
  request.body = judged;
}
