// Durations in configuration accept plain seconds ("1800") or units ("30m", "12h", "1h30m", "250ms"),
// as SPEC section 2 says. Everything inside the gateway works in milliseconds.

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const PLAIN_SECONDS = /^\d+(\.\d+)?$/;
const WITH_UNITS = /^(\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const ONE_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Parses a duration into milliseconds, or returns null when the text is not a duration. */
export function parseDurationMs(text: string): number | null {
  const value = text.trim();
  if (PLAIN_SECONDS.test(value)) return Math.round(Number(value) * 1_000);
  if (!WITH_UNITS.test(value)) return null;
  let total = 0;
  for (const [, amount, unit] of value.matchAll(ONE_PART)) {
    total += Number(amount) * (UNIT_MS[unit as string] ?? 0);
  }
  return Math.round(total);
}
