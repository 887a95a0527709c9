// (i) A naive forward-auth verifier for nginx auth_request: raw node:http, one Redis GET per request
// on the session cookie, the same 204 headers as session-gateway's /_auth/verify (401 without one).
// What a team writes in an afternoon: the bar /_auth/verify has to clear.
import { createServer } from 'node:http';
import { Redis } from 'ioredis';

const { PORT, REDIS_URL, COOKIE_NAME = 'sgw_session', KEY_PREFIX = 'naive:' } = process.env;
const redis = new Redis(REDIS_URL);
const cookiePattern = new RegExp(`(?:^|;\\s*)${COOKIE_NAME}=([^;]*)`);

createServer(async (req, res) => {
  const match = cookiePattern.exec(req.headers.cookie ?? '');
  let raw = null;
  try {
    raw = match ? await redis.get(KEY_PREFIX + match[1]) : null;
  } catch {
    res.writeHead(503).end();
    return;
  }
  if (!raw) {
    res.writeHead(401, { 'cache-control': 'no-store' }).end();
    return;
  }
  const session = JSON.parse(raw);
  res.writeHead(204, { 'cache-control': 'no-store', 'x-forwarded-user': session.user, 'x-forwarded-email': session.email, 'x-forwarded-groups': session.groups.join(',') });
  res.end();
}).listen(Number(PORT), '127.0.0.1');
