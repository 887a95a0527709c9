// pino options shared by the server and the CLI. Redaction is defence in depth: the code never
// logs a cookie, password, CSRF token or Authorization value on purpose, and these paths make
// sure a future `log.info({ req })` cannot leak one either (SPEC section 7).
import type { FastifyBaseLogger } from 'fastify';
import pino, { type Bindings, type ChildLoggerOptions, type LogFn, type Logger, type LoggerOptions } from 'pino';

// Explicit paths only: wildcard paths (`*.password`) made every request's child logger and log
// line ~5 µs slower (measured with pino 10), and nothing logs nested bodies anyway.
export const REDACTED_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers["x-csrf-token"]',
  'req.headers["x-gateway-identity"]',
  'res.headers["x-gateway-identity"]',
  'res.headers["set-cookie"]',
  'headers.cookie',
  'headers.authorization',
  'body.password',
  'body.csrf',
  'password',
  'csrf',
  'secret',
  'cookie',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'session-gateway' },
    timestamp: isoTimeOncePerMillisecond,
  };
}

/**
 * Standard output, by default written synchronously, one write(2) per line: a line is in the
 * kernel's pipe before the call returns, so a crash (an OOM kill included) loses none and SIGTERM
 * has nothing to flush. pino's default for stdout is an asynchronous sonic-boom: every line not
 * batched with others is an fs.write through the thread pool, and whatever waits behind a write in
 * flight is lost on a crash. With `batchPerTurn` (GATEWAY_LOG_BATCH) the lines of one event-loop
 * turn share one write(2) at the turn's end: cheaper under load (bench/RESULTS.md, issue 13), at
 * the price of that turn's lines on a kill -9.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, options: { batchPerTurn?: boolean } = {}): pino.Logger {
  const stdout = () => (options.batchPerTurn ? createTurnBatchedStdout() : pino.destination({ dest: 1, sync: true }));
  return pino(loggerOptions(level), destination ?? stdout());
}

/** What the turn batcher writes to: sonic-boom in sync mode (it retries EAGAIN and partial writes). */
interface SyncSink {
  write(data: string): boolean;
  flushSync(): void;
}

/**
 * A pino destination that hands `sink` the lines written during one event-loop turn as one string,
 * from a setImmediate (after every I/O callback of the turn, before the loop waits again), and
 * flushes on `exit` (process.exit after the drain, an uncaught exception), so nothing outlives the
 * process unwritten. A kill -9 (an OOM kill) or a native abort before the turn ends loses that
 * turn's lines, access and audit alike: why it is a choice (GATEWAY_LOG_BATCH), not the default.
 */
export class TurnBatchedDestination {
  readonly #sink: SyncSink;
  #pending = '';
  #scheduled = false;

  constructor(sink: SyncSink) {
    this.#sink = sink;
  }

  write(line: string): boolean {
    this.#pending += line;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#endOfTurn);
    }
    return true;
  }

  /** Writes what is pending now (exit, tests). */
  flushSync(): void {
    if (this.#writePending()) this.#sink.flushSync();
  }

  readonly #endOfTurn = (): void => {
    this.#scheduled = false;
    this.#writePending();
  };

  /** Hands the sink what is pending, if anything; false when there was nothing. */
  #writePending(): boolean {
    const pending = this.#pending;
    if (pending === '') return false;
    this.#pending = '';
    this.#sink.write(pending);
    return true;
  }
}

function createTurnBatchedStdout(): TurnBatchedDestination {
  const destination = new TurnBatchedDestination(pino.destination({ dest: 1, sync: true }));
  process.on('exit', () => destination.flushSync());
  return destination;
}

let lastMs = -1;
let lastTime = '';
/** pino.stdTimeFunctions.isoTime, same bytes, with the Date formatted once per millisecond, not per line. */
export function isoTimeOncePerMillisecond(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

/** The fields of the access-log line (SPEC 7), in the order they are written. */
export interface AccessLine {
  reqId: string;
  method: string;
  path: string;
  status: number;
  ms: number;
  user: string | null;
  ip: string;
}

/**
 * `request.log` without a pino child per request: fastify makes one for every request (its
 * `reqId` binding serialised, a prototype object built) even though most proxied requests log
 * nothing but their access line. This one makes the child on the first line that needs it.
 */
export class RequestLogger {
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions | undefined;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions | undefined) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  get level(): string {
    return this.#child?.level ?? this.#options?.level ?? this.#parent.level;
  }

  set level(level: string) {
    this.#logger().level = level;
  }

  isLevelEnabled(level: string): boolean {
    if (this.#child) return this.#child.isLevelEnabled(level);
    const values = this.#parent.levels.values;
    const wanted = values[level];
    const threshold = values[this.level];
    return wanted !== undefined && threshold !== undefined && wanted >= threshold;
  }

  // Prototype methods, not arrow fields: nothing allocated per request beyond the object itself.
  fatal(...args: LogArgs): void {
    this.#logger().fatal(...args);
  }
  error(...args: LogArgs): void {
    this.#logger().error(...args);
  }
  warn(...args: LogArgs): void {
    this.#logger().warn(...args);
  }
  info(...args: LogArgs): void {
    this.#logger().info(...args);
  }
  debug(...args: LogArgs): void {
    this.#logger().debug(...args);
  }
  trace(...args: LogArgs): void {
    this.#logger().trace(...args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.#logger().child(bindings, options);
  }

  /**
   * The access line through the parent with `reqId` as its first field: the same bytes the child
   * would write (its binding comes first there too), without making the child. The route's level
   * still applies (forward-auth's route logs at warn unless asked to).
   */
  access(line: AccessLine): void {
    if (this.isLevelEnabled('info')) accessWriterFor(this.#parent)(line);
  }

  #logger(): Logger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }
}

type LogArgs = Parameters<LogFn>;

const { chindingsSym, endSym, formattersSym, hooksSym, lsCacheSym, messageKeySym, mixinSym, needsMetadataGsym, nestedKeySym, serializersSym, streamSym, stringifiersSym, timeSym } = pino.symbols;
// Not in pino's type declarations, but among its exported symbols since pino 8.
const { msgPrefixSym, wildcardFirstSym } = pino.symbols as unknown as Record<'msgPrefixSym' | 'wildcardFirstSym', symbol>;
const ACCESS_FIELDS: readonly (keyof AccessLine)[] = ['reqId', 'method', 'path', 'status', 'ms', 'user', 'ip'];
const INFO = 30;
type AccessWriter = (line: AccessLine) => void;
const accessWriters = new WeakMap<Logger, AccessWriter>();

/** The access-line writer for a logger, made on its first line. */
function accessWriterFor(logger: Logger): AccessWriter {
  let writer = accessWriters.get(logger);
  if (writer === undefined) accessWriters.set(logger, (writer = createAccessLineWriter(logger)));
  return writer;
}

/**
 * The access line (at info, with `msg` "request") in the very bytes pino's `info(line, 'request')`
 * writes: its level, time and bindings prefix, then the fields in order, each value as JSON, then
 * `msg`. Without pino's generic walk over the object (a lookup and a string per field: 1.6 KB
 * allocated per line, measured). Only where pino would not transform the line: no mixin, log
 * formatter, hooks, message prefix, nesting, serializer or redaction of one of these fields, nor a
 * destination that wants metadata (multistream); otherwise it is pino's own call.
 */
export function createAccessLineWriter(logger: Logger): AccessWriter {
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[streamSym] as { write(line: string): unknown } & Record<symbol, unknown>;
  const formatters = internals[formattersSym] as { log?: unknown } | undefined;
  const hooks = internals[hooksSym] as { logMethod?: unknown; streamWrite?: unknown } | undefined;
  const serializers = internals[serializersSym] as Record<string, unknown>;
  const stringifiers = internals[stringifiersSym] as Record<string | symbol, unknown>;
  const transformed =
    internals[mixinSym] != null ||
    formatters?.log !== undefined ||
    hooks?.logMethod != null ||
    hooks?.streamWrite != null ||
    typeof internals[msgPrefixSym] === 'string' ||
    internals[nestedKeySym] != null ||
    internals[messageKeySym] !== 'msg' ||
    stream[needsMetadataGsym] === true ||
    stringifiers[wildcardFirstSym] !== undefined ||
    ACCESS_FIELDS.some((field) => serializers[field] !== undefined || stringifiers[field] !== undefined);
  if (transformed) return (line) => logger.info(line, 'request');
  const start = (internals[lsCacheSym] as Record<number, string>)[INFO]!;
  const time = internals[timeSym] as () => string;
  const end = `,"msg":"request"${internals[endSym] as string}`;
  return (line) => {
    // The bindings are read per line: a logger's can change (setBindings).
    let out = start + time.call(logger) + (internals[chindingsSym] as string);
    out += `,"reqId":${JSON.stringify(line.reqId)},"method":${JSON.stringify(line.method)},"path":${JSON.stringify(line.path)}`;
    out += `,"status":${line.status},"ms":${Number.isFinite(line.ms) ? line.ms : null},"user":${line.user === null ? null : JSON.stringify(line.user)}`;
    // pino leaves out a field that is undefined (request.ip of a socket already gone).
    if (line.ip !== undefined) out += `,"ip":${JSON.stringify(line.ip)}`;
    stream.write(out + end);
  };
}

/**
 * fastify's childLoggerFactory: a RequestLogger per request instead of a pino child. fastify
 * passes `{}` unless the route sets a log level or serializers; pino's child() takes a slower
 * path for any options object, so an empty one is dropped.
 */
export function requestLoggerFactory(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  const routeOptions = options.level === undefined && options.serializers === undefined ? undefined : options;
  return new RequestLogger(logger as Logger, bindings, routeOptions) as unknown as FastifyBaseLogger;
}

/** Milliseconds as the access line gives them: to a tenth. */
export function roundedMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/**
 * Writes the access line (SPEC 7) through request.log. buildApp always installs
 * requestLoggerFactory; a plain pino child (another factory) would repeat its reqId binding.
 */
export function writeAccessLine(log: unknown, line: AccessLine): void {
  if (log instanceof RequestLogger) log.access(line);
  else (log as Logger).info(line, 'request');
}
