// CPU cost of scanning a POST body for `_method` as it streams (src/access/body-methods.ts), which
// the proxy does only where a body could change the access decision (a path where some method
// meets another rule than POST), and a WebDAV body for its hrefs (src/access/body-paths.ts: a
// REPORT, SEARCH, BIND or REBIND where there are rules). In process, on the event loop as in the
// gateway.
//
//   npm run build && node bench/body-scan.mjs      # BODY_SCAN_MB=4 BODY_SCAN_CHUNK=65536 BODY_SCAN_ROUNDS=7
//
// For each body type, a body of BODY_SCAN_MB megabytes (one large field, `_method` at its end) fed
// in chunks of BODY_SCAN_CHUNK bytes, as a socket delivers it; prints the median MB/s over the
// rounds and the CPU time per megabyte. The XML bodies are what the gateway reads at most: a CalDAV
// multiget of 250 hrefs (about 19 KB), and one text element of about 250 KB.
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = resolve(process.env.BODY_SCAN_DIST ?? join(root, 'dist'));
const MB = Number(process.env.BODY_SCAN_MB ?? 4);
const CHUNK = Number(process.env.BODY_SCAN_CHUNK ?? 65_536);
const ROUNDS = Number(process.env.BODY_SCAN_ROUNDS ?? 7);
const { createBodyMethodScanner } = await import(pathToFileURL(join(dist, 'access/body-methods.js')).href);
const { createBodyPathScanner, MAX_HREFS, MAX_SCANNED_XML_BYTES } = await import(pathToFileURL(join(dist, 'access/body-paths.js')).href);

const filler = 'x'.repeat(MB * 1_000_000);
const bodies = {
  form: ['application/x-www-form-urlencoded', `note=${filler}&_method=DELETE`],
  'form, many fields': ['application/x-www-form-urlencoded', `${'field=value&'.repeat(Math.round((MB * 1_000_000) / 12))}_method=DELETE`],
  multipart: ['multipart/form-data; boundary=XyZ', `--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\n${filler}\r\n--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--XyZ--\r\n`],
  json: ['application/json', JSON.stringify({ note: filler, _method: 'DELETE' })],
};
const NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"';
const href = (i) => `<D:href>/calendars/alice/home/${String(i).padStart(32, '0')}.ics</D:href>\n`;
const xmlBodies = {
  'xml, multiget': `<C:calendar-multiget ${NS}><D:prop><D:getetag/><C:calendar-data/></D:prop>\n${Array.from({ length: MAX_HREFS }, (_, i) => href(i)).join('')}</C:calendar-multiget>`,
  'xml, one text': `<D:searchrequest xmlns:D="DAV:"><D:basicsearch><D:where><D:literal>${filler.slice(0, MAX_SCANNED_XML_BYTES - 300)}</D:literal></D:where><D:from><D:scope><D:href>/dav/</D:href></D:scope></D:from></D:basicsearch></D:searchrequest>`,
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [type, [contentType, text]] of Object.entries(bodies)) {
  await measure(type, text, () => createBodyMethodScanner(type.split(',')[0], contentType), (scan) => scan.ok && scan.methods?.[0] === 'DELETE');
}
for (const [type, text] of Object.entries(xmlBodies)) {
  const options = { contentType: 'application/xml; charset=utf-8', requestPath: '/calendars/alice/home/', basePath: null };
  // A small body is scanned as many times as make a megabyte per round (each with a new scanner, as each request has).
  await measure(type, text, () => createBodyPathScanner(options), (scan) => scan.ok && scan.named !== null, Math.ceil(1e6 / Buffer.byteLength(text)));
}

/** Feeds `text` in CHUNK-byte chunks to a new scanner, `times` per round (one warm-up round), checks what it found, prints the rates. */
async function measure(type, text, createScanner, found, times = 1) {
  const bytes = Buffer.from(text);
  const chunks = [];
  for (let i = 0; i < bytes.length; i += CHUNK) chunks.push(bytes.subarray(i, i + CHUNK));
  const rates = [];
  for (let round = 0; round < ROUNDS + 1; round++) {
    const started = process.cpuUsage();
    for (let time = 0; time < times; time++) {
      const scanner = createScanner();
      for (const chunk of chunks) scanner.write(chunk);
      const scan = await scanner.end();
      if (!found(scan)) throw new Error(`${type}: the scan failed or missed what the body names: ${JSON.stringify(scan).slice(0, 200)}`);
    }
    const { user, system } = process.cpuUsage(started);
    if (round > 0) rates.push((bytes.length * times) / 1e6 / ((user + system) / 1e6));
  }
  const rate = median(rates);
  console.log(`${type.padEnd(18)} ${rate.toFixed(0).padStart(6)} MB/s  ${(1000 / rate).toFixed(2).padStart(6)} ms CPU per MB  (rounds: ${rates.map((r) => r.toFixed(0)).join(', ')})`);
}
