import { registerErrors } from '../src/index.js';

/**
 * The helpdesk's own error codes, next to the toolkit's (docs/errors.md lists both;
 * test/errors.test.ts checks them against the catalog).
 */
export const helpdeskErrors = {
  invalid_credentials: { status: 401, title: 'The email or password is wrong' },
  email_taken: { status: 409, title: 'A user with this email already exists in the tenant' },
  last_owner: { status: 409, title: 'The tenant would be left without an owner' },
} as const;

declare module '../src/index.js' {
  interface RegisteredErrorCodes extends Record<keyof typeof helpdeskErrors, true> {}
}

registerErrors(helpdeskErrors);
