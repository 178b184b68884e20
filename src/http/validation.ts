import { Ajv, type Options } from 'ajv';
import addFormatsImport from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

/**
 * Bodies are validated strictly: no type coercion ("5" is not 5) and no silent removal of unknown
 * properties (they are refused). Query strings and path parameters are text by nature, so they
 * are coerced to the declared types.
 */
export function installValidators(app: FastifyInstance): void {
  const base: Options = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false };
  const body = addFormats(new Ajv({ ...base, coerceTypes: false }));
  const text = addFormats(new Ajv({ ...base, coerceTypes: true }));
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? body : text).compile(schema));
}
