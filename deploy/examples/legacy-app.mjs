// A stand-in for an unmodified legacy app: no login code at all, it only reads the identity
// headers session-gateway adds. It binds to 127.0.0.1 by default, as a sidecar's app should: only
// the gateway beside it (same pod, task or network namespace) can reach it.
//   HOST (127.0.0.1), PORT (8080; 0 picks a free port), REPLICA (a name shown on the page)
import { createServer } from 'node:http';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8080);
const replica = process.env.REPLICA ?? process.env.HOSTNAME ?? 'local';

/** The gateway percent-encodes non-ASCII values (zoë → %7A%6F%C3%AB); decoding is always safe. */
function header(req, name) {
  const value = req.headers[name];
  if (typeof value !== 'string') return null;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const server = createServer((req, res) => {
  const user = header(req, 'x-forwarded-user');
  const email = header(req, 'x-forwarded-email');
  const groups = header(req, 'x-forwarded-groups');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Legacy app</title>
<h1>Hello, ${escapeHtml(user ?? '(nobody)')}</h1>
<p>Email: ${escapeHtml(email || '-')} · Groups: ${escapeHtml(groups || '-')}</p>
<p>Served by replica <strong>${escapeHtml(replica)}</strong> for ${escapeHtml(req.method ?? 'GET')} ${escapeHtml(req.url ?? '/')}.</p>
<form method="post" action="/_auth/logout"><button>Sign out</button></form>
`);
});

server.listen(port, host, () => {
  const address = server.address();
  console.log(`legacy app listening on http://${host}:${typeof address === 'object' && address ? address.port : port}`);
});

// Exit promptly on docker stop / Kubernetes termination.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
