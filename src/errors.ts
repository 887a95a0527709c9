// Every error the gateway raises on purpose, declared once with a stable code and HTTP status.
// The cause is kept for logs; the message is what a client may see.

export class GatewayError extends Error {
  readonly code: string;
  readonly statusCode: number;
  constructor(code: string, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

export const sessionStoreUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_SESSION_STORE_UNAVAILABLE', 503, 'The session store is unavailable; try again shortly.', { cause });

export const userStoreUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_USER_STORE_UNAVAILABLE', 503, 'Sign-in is temporarily unavailable; try again shortly.', { cause });

export const badPath = (reason: string) => new GatewayError('GW_ERR_BAD_PATH', 400, `Bad request path: ${reason}.`);

export const upstreamUnavailable = (cause: unknown) =>
  new GatewayError('GW_ERR_UPSTREAM_UNAVAILABLE', 502, 'The application is not answering.', { cause });

export const upstreamTimeout = (cause: unknown) =>
  new GatewayError('GW_ERR_UPSTREAM_TIMEOUT', 504, 'The application took too long to answer.', { cause });

export const accessDenied = () => new GatewayError('GW_ERR_ACCESS_DENIED', 403, 'You do not have access to this page.');
