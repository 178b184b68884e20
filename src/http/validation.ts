import { Ajv, type Options } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { UUID_PATTERN_ANY_CASE } from '../core/tenant-ids.js';
import { TenantryError } from '../errors.js';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

/**
 * ajv-formats' `uuid` also accepts a `urn:uuid:` prefix, which PostgreSQL's uuid type does not:
 * such an id passed validation and then failed in the database (a 503 on catalog routes). Only
 * the plain 8-4-4-4-12 form is a uuid here.
 */
const UUID_FORMAT = UUID_PATTERN_ANY_CASE;

/** PostgreSQL text cannot hold U+0000: a string with one would fail in the database, not here. */
function nulPath(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path || '/' : null;
  if (depth > 32 || value === null || typeof value !== 'object') return null;
  for (const [k, v] of Object.entries(value)) {
    const found = nulPath(v, `${path}/${k}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * Bodies are validated strictly: no type coercion ("5" is not 5) and no silent removal of unknown
 * properties (they are refused). Query strings and path parameters are text by nature, so they
 * are coerced to the declared types. Bodies are JSON only (text/plain is a 415), and no string of
 * the body, query or path may contain a NUL character.
 */
export function installValidators(app: FastifyInstance): void {
  const base: Options = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false };
  const body = addFormats(new Ajv({ ...base, coerceTypes: false })).addFormat('uuid', UUID_FORMAT);
  const text = addFormats(new Ajv({ ...base, coerceTypes: true })).addFormat('uuid', UUID_FORMAT);
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? body : text).compile(schema));
  app.removeContentTypeParser('text/plain');
  app.addHook('preValidation', async (request) => {
    for (const [part, value] of [['body', request.body], ['querystring', request.query], ['params', request.params]] as const) {
      const path = nulPath(value, '');
      if (path) {
        throw new TenantryError('validation_failed', `${part}${path} must not contain a NUL character`,
          { errors: [{ path, message: 'must not contain a NUL character' }] });
      }
    }
  });
}
