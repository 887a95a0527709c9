// New passwords are refused when they are on a list of common passwords: the one that ships,
// as data, inside @zxcvbn-ts/language-common (about 50,000 leaked passwords, nothing fetched at
// install or run time). Only entries at least as long as the minimum can ever match, so only
// those are kept (a few hundred), compared without regard to case.
//
// The list is read from the package's plain JSON file, not imported: an imported module stays in
// memory for the life of the process, and the package's entry point decompresses all 50,000
// entries plus its other dictionaries (about 2.9 MiB of heap) to keep a few hundred of them.
// Read and filtered, the rest is garbage at once.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** SPEC 9: a new password has at least this many characters. */
export const MIN_PASSWORD_LENGTH = 12;

const LIST_FILE = '@zxcvbn-ts/language-common/src/passwords.json';

let common: Set<string> | null = null;

/** The leaked passwords long enough to matter, lower-cased; throws if the package's list is unreadable. */
export function readCommonPasswords(minLength = MIN_PASSWORD_LENGTH): Set<string> {
  const list: unknown = JSON.parse(readFileSync(createRequire(import.meta.url).resolve(LIST_FILE), 'utf8'));
  if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string')) {
    throw new Error(`${LIST_FILE} is not a list of passwords`);
  }
  return new Set((list as string[]).filter((p) => [...p].length >= minLength).map((p) => p.toLowerCase()));
}

function commonPasswords(): Set<string> {
  common ??= readCommonPasswords();
  return common;
}

export type NewPasswordProblem = 'too_short' | 'common';

/** Why a new password is refused, or null. Length counts characters (code points), not bytes. */
export function newPasswordProblem(password: string): NewPasswordProblem | null {
  if ([...password].length < MIN_PASSWORD_LENGTH) return 'too_short';
  if (commonPasswords().has(password.toLowerCase())) return 'common';
  return null;
}

/** Loads the list now (start-up), so the first password change does not pay for it. */
export function prepareCommonPasswords(): number {
  return commonPasswords().size;
}
