// New passwords are refused when they are on a list of common passwords: the one that ships,
// as data, inside @zxcvbn-ts/language-common (about 50,000 leaked passwords, nothing fetched at
// install or run time). Only entries at least as long as the minimum can ever match, so only
// those are kept (a few hundred), compared without regard to case.
import { dictionary } from '@zxcvbn-ts/language-common';

/** SPEC 9: a new password has at least this many characters. */
export const MIN_PASSWORD_LENGTH = 12;

let common: Set<string> | null = null;

function commonPasswords(): Set<string> {
  common ??= new Set(dictionary['passwords-common'].filter((p) => [...p].length >= MIN_PASSWORD_LENGTH).map((p) => p.toLowerCase()));
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
