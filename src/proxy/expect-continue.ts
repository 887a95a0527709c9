// `Expect: 100-continue` (RFC 9110 §10.1.1): the client holds its body back until it hears `100
// Continue`, so that a request the server refuses costs no upload. Node answers 100 by itself
// before any handler has looked at the request; for a request to the app the gateway answers it
// only once the access decision has let it through. A refused one gets its 401/403 at once, and
// Node closes the connection after it (the body was never sent, so it cannot be read past).
import type { IncomingMessage, ServerResponse } from 'node:http';

const kAwaitingContinue = Symbol('awaitingContinue');

type Awaiting = IncomingMessage & { [kAwaitingContinue]?: ServerResponse };

/** For the server's `checkContinue`: the answer waits for `sendContinue`. */
export function holdContinue(req: IncomingMessage, res: ServerResponse): void {
  (req as Awaiting)[kAwaitingContinue] = res;
}

/** The request may go on: its client is told to send the body (once; nothing when none was held back). */
export function sendContinue(req: IncomingMessage): void {
  const res = (req as Awaiting)[kAwaitingContinue];
  if (res === undefined) return;
  (req as Awaiting)[kAwaitingContinue] = undefined;
  if (!res.headersSent) res.writeContinue();
}
