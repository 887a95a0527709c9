// A POST's body may name another method (`_method` in a form, a multipart form or a JSON object:
// Rails, Laravel, Symfony, Spring), which the app then acts on, so the rules for that method must
// allow the request too. Bodies stream (SPEC 4), so the body is not read before forwarding: it is
// scanned as it passes (access/body-methods.ts) and only its last chunk is held back, so the app
// never has the whole body before the methods it names are judged. Allowed, the last chunk goes on;
// refused, the upstream request is aborted (the app never gets a complete request) and the client
// gets the refusal. Only where the body could change the decision: a POST of such a type, allowed
// as it is, at a path where some method would meet another rule.
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { createBodyMethodScanner, type BodyMethodScanner, type BodyScan } from '../access/body-methods.js';
import type { OverridingBody } from '../access/method-override.js';
import { PROXIED_METHODS } from './methods.js';

/** Every method a body could name that a rule could scope, POST aside. */
export const OVERRIDE_CANDIDATES: readonly string[] = PROXIED_METHODS.filter((method) => method !== 'POST');

/**
 * A body coding the scanner cannot see through (`gzip`: an app stack that inflates request bodies,
 * Apache's DEFLATE input filter, would read a `_method` the scan misses), or null. Browsers and
 * form clients send none.
 */
export function unreadableCoding(request: FastifyRequest): string | null {
  const coding = request.headers['content-encoding'];
  if (coding === undefined) return null;
  return coding.split(',').every((c) => c.trim().toLowerCase() === 'identity' || c.trim() === '') ? null : coding;
}

/** Answers once the whole body was scanned: true refuses the request (the caller keeps why). */
export type BodyJudge = (scan: BodyScan) => Promise<boolean>;

/** The refusal that ends the upstream request's body. */
class BodyRefused extends Error {
  constructor() {
    super('the methods the request body names are not allowed');
    this.name = 'BodyRefused';
  }
}

/** Passes every chunk on but the latest, which waits for the next one or for the judgement. */
class JudgedBody extends Transform {
  #held: Buffer | null = null;
  readonly #scanner: BodyMethodScanner;
  readonly #judge: BodyJudge;

  constructor(scanner: BodyMethodScanner, judge: BodyJudge) {
    super();
    this.#scanner = scanner;
    this.#judge = judge;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#scanner.write(chunk);
    if (this.#held !== null) this.push(this.#held);
    this.#held = chunk;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#scanner
      .end()
      .then((scan) => this.#judge(scan))
      .then((refused) => {
        if (refused) return callback(new BodyRefused());
        if (this.#held !== null) this.push(this.#held);
        callback();
      }, callback);
  }
}

/** From now on the request's body (what http-proxy forwards) is scanned and judged as it streams. */
export function judgeBodyAsItStreams(request: FastifyRequest, type: OverridingBody, judge: BodyJudge): void {
  // A request without a body (fastify parses none when there is nothing to read) names nothing.
  if (!(request.body instanceof Readable)) return;
  const source = request.body;
  const judged = new JudgedBody(createBodyMethodScanner(type, request.headers['content-type'] ?? ''), judge);
  // Not pipeline(): a refusal must leave the client's request alone, its answer is still to come.
  source.once('error', (err) => judged.destroy(err));
  source.pipe(judged);
  request.body = judged;
}
