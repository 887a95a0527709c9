// Which request /_auth/verify authorises: named by a trusted proxy's headers, normalised exactly like
// the proxy path, never taken from an untrusted peer, refused when two spellings disagree.
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { originalRequest } from '../../src/forward-auth/original-request.js';

const OWN = { path: '/_auth/verify' };
const trusted = (headers: IncomingHttpHeaders) => originalRequest({ headers, peerTrusted: true, ...OWN });
const untrusted = (headers: IncomingHttpHeaders) => originalRequest({ headers, peerTrusted: false, ...OWN });

t.test('a trusted proxy names the request (Traefik/Caddy and nginx spellings)', async (t) => {
  t.same(trusted({ 'x-forwarded-uri': '/app/page?x=1', 'x-forwarded-method': 'POST' }), { ok: true, request: { path: '/app/page', url: '/app/page?x=1', method: 'POST', known: true } });
  t.same(trusted({ 'x-original-uri': '/app/page', 'x-original-method': 'DELETE' }), { ok: true, request: { path: '/app/page', url: '/app/page', method: 'DELETE', known: true } });
  t.same(trusted({ 'x-original-uri': '/a', 'x-forwarded-uri': '/a' }), { ok: true, request: { path: '/a', url: '/a', method: null, known: true } }, 'both spellings agreeing');
  t.same(trusted({ 'x-forwarded-uri': '/a' }), { ok: true, request: { path: '/a', url: '/a', method: null, known: true } }, 'no method header: not known (the verify request’s own says nothing)');
});

t.test('the path is normalised exactly like the proxy path', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['/public/../admin', '/admin', '/admin'],
    ['//a///b/./c', '/a/b/c', '/a/b/c'],
    ['/%7Euser/%61', '/~user/a', '/~user/a'],
    ['/a/b/..?q=%2F', '/a/', '/a/?q=%2F'],
  ];
  for (const [uri, path, url] of cases) {
    const result = trusted({ 'x-forwarded-uri': uri });
    t.same(result, { ok: true, request: { path, url, method: null, known: true } }, uri);
  }
});

t.test('a malformed original request is refused', async (t) => {
  const refused: IncomingHttpHeaders[] = [
    { 'x-forwarded-uri': '/a/%2F/b' },
    { 'x-forwarded-uri': '/../etc/passwd' },
    { 'x-forwarded-uri': '/public/..;/admin' },
    { 'x-forwarded-uri': '/a%00' },
    { 'x-forwarded-uri': '/a\\b' },
    { 'x-forwarded-uri': 'http://evil.example/admin' },
    { 'x-forwarded-uri': '*' },
    { 'x-forwarded-uri': '' },
    { 'x-forwarded-uri': '/public, /admin' }, // the header sent twice, joined by Node
    { 'x-original-uri': '/caf\u00e9' },
    { 'x-forwarded-uri': '/a', 'x-forwarded-method': 'GET, POST' },
    { 'x-forwarded-uri': '/a', 'x-forwarded-method': 'G E T' },
    { 'x-forwarded-uri': '/a', 'x-forwarded-method': '' },
  ];
  for (const headers of refused) t.equal(trusted(headers).ok, false, JSON.stringify(headers));
});

t.test('two spellings that disagree are refused, whichever the proxy set', async (t) => {
  // nginx sets X-Original-URI and passes a client's X-Forwarded-Uri through (and Traefik the reverse).
  t.same(trusted({ 'x-original-uri': '/admin', 'x-forwarded-uri': '/public' }), { ok: false, reason: 'X-Forwarded-Uri and X-Original-URI disagree' });
  const both = { 'x-forwarded-uri': '/a', 'x-original-uri': '/a' };
  t.same(trusted({ ...both, 'x-forwarded-method': 'GET', 'x-original-method': 'POST' }), { ok: false, reason: 'X-Forwarded-Method and X-Original-Method disagree' });
  t.equal(trusted({ 'x-forwarded-uri': ['/a', '/b'] as unknown as string }).ok, false, 'an array of values');
});

t.test('an untrusted peer names nothing: the verify request is its own original', async (t) => {
  const expected = { ok: true, request: { path: '/_auth/verify', url: '/_auth/verify', method: null, known: false } };
  t.same(untrusted({}), expected);
  t.same(untrusted({ 'x-original-uri': '/public/x', 'x-forwarded-uri': '/public/x', 'x-forwarded-method': 'POST' }), expected, 'its headers are ignored');
  t.same(untrusted({ 'x-forwarded-uri': '/a/%2F', 'x-forwarded-method': 'G E T' }), expected, 'even malformed ones: not read at all');
});

t.test('a trusted proxy that names only the method, or nothing: nothing is known', async (t) => {
  const nothing = { ok: true, request: { path: '/_auth/verify', url: '/_auth/verify', method: null, known: false } };
  t.same(trusted({}), nothing);
  t.same(trusted({ 'x-forwarded-method': 'PUT' }), nothing, 'a method header without its URI header names no request');
});

t.test('the original method is compared in upper case, so `delete` meets a rule for DELETE', async (t) => {
  t.same(trusted({ 'x-forwarded-uri': '/api/x', 'x-forwarded-method': 'delete' }), { ok: true, request: { path: '/api/x', url: '/api/x', method: 'DELETE', known: true } });
  t.same(trusted({ 'x-forwarded-uri': '/a', 'x-original-uri': '/a', 'x-forwarded-method': 'Delete', 'x-original-method': 'DELETE' }).ok, true);
});

t.test('a method header is believed only with the URI header of its convention (SPEC 4)', async (t) => {
  const known = (path: string, method: string | null) => ({ ok: true, request: { path, url: path, method, known: true } });
  // nginx's documented snippet sets only X-Original-URI and passes the client's other headers on.
  t.same(trusted({ 'x-original-uri': '/export', 'x-forwarded-method': 'POST' }), known('/export', null), "a client's X-Forwarded-Method behind nginx");
  t.same(trusted({ 'x-forwarded-uri': '/export', 'x-original-method': 'POST' }), known('/export', null), "a client's X-Original-Method behind Traefik");
  t.same(trusted({ 'x-original-uri': '/export', 'x-original-method': 'post' }), known('/export', 'POST'));
  // Both URI headers (one may be the client's): both method headers, agreeing, or the method is not known.
  t.same(trusted({ 'x-original-uri': '/export', 'x-forwarded-uri': '/export', 'x-forwarded-method': 'POST' }), known('/export', null));
  t.same(trusted({ 'x-original-uri': '/export', 'x-forwarded-uri': '/export', 'x-original-method': 'POST' }), known('/export', null));
  t.same(trusted({ 'x-original-uri': '/export', 'x-forwarded-uri': '/export', 'x-original-method': 'PUT', 'x-forwarded-method': 'put' }), known('/export', 'PUT'));
});

t.test('WebDAV and CalDAV methods are methods like any other', async (t) => {
  for (const method of ['PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'MKCALENDAR', 'VERSION-CONTROL', 'BASELINE-CONTROL', 'MKACTIVITY']) {
    t.same(trusted({ 'x-forwarded-uri': '/dav/', 'x-forwarded-method': method, depth: '1' }), { ok: true, request: { path: '/dav/', url: '/dav/', method, known: true } }, method);
  }
  // A REPORT or SEARCH reads inside its path whatever its Depth (a calendar-query on a calendar returns every event).
  for (const method of ['REPORT', 'SEARCH']) {
    t.same(trusted({ 'x-forwarded-uri': '/dav/', 'x-forwarded-method': method, depth: '1' }), { ok: true, request: { path: '/dav/', url: '/dav/', method, known: true, wholeTree: true } }, method);
  }
  // A PROPFIND without Depth is Depth infinity (RFC 4918): it reads everything under the path.
  t.same(trusted({ 'x-forwarded-uri': '/dav/', 'x-forwarded-method': 'PROPFIND' }), { ok: true, request: { path: '/dav/', url: '/dav/', method: 'PROPFIND', known: true, wholeTree: true } });
});
