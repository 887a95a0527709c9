// Which `Set-Cookie` lines from the app would set one of the gateway's own cookies in a browser
// (SPEC §4: dropped however the name is spaced). Parsed the way browsers do (RFC 6265bis §5.7,
// as Chromium and Firefox implement it), not the way the header looks.

/**
 * True when a browser would store `line` as a cookie the gateway reads by one of `names`:
 * - the name is everything before the first `=` of the part before the first `;`, with
 *   whitespace around it removed: ` sgw_session =x`, `\tsgw_session=x`;
 * - a line without `=` (or with an empty name, `=sgw_session=x`) makes a nameless cookie whose
 *   value the browser sends back bare (`Cookie: sgw_session=x`), which a server reads as that name.
 * Names are compared case-sensitively, as browsers and the gateway's cookie parser do.
 */
export function isGatewayCookie(line: string, names: readonly string[]): boolean {
  const semicolon = line.indexOf(';');
  const pair = semicolon === -1 ? line : line.slice(0, semicolon);
  const equals = pair.indexOf('=');
  const name = equals === -1 ? '' : trimWhitespace(pair.slice(0, equals));
  if (name !== '') return names.includes(name);
  // Nameless: what the browser sends back is the value alone; read it as a server would.
  const value = trimWhitespace(equals === -1 ? pair : pair.slice(equals + 1));
  const inner = value.indexOf('=');
  return names.includes(trimWhitespace(inner === -1 ? value : value.slice(0, inner)));
}

/** Browsers trim space and tab; any other control character is trimmed too, to err on dropping. */
function trimWhitespace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) <= 0x20) start++;
  while (end > start && text.charCodeAt(end - 1) <= 0x20) end--;
  return text.slice(start, end);
}
