import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function makeAjv(coerceTypes: false | 'array') {
  // Bodies are strict: no coercion and no silent removal, so a wrong type or an unknown field is a 400.
  const ajv = new Ajv.default({ allErrors: true, removeAdditional: false, useDefaults: true, coerceTypes, strict: false });
  addFormats.default(ajv);
  return ajv;
}

const bodyAjv = makeAjv(false);
const paramsAjv = makeAjv('array');

type Validate = ReturnType<FastifySchemaCompiler<unknown>>;

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  let compiled: Validate | undefined;
  const validate: Validate = (data: unknown) => {
    compiled ??= (httpPart === 'body' ? bodyAjv : paramsAjv).compile(schema as object) as Validate;
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  };
  return validate;
};

type Serialize = (data: unknown) => string;

/** Fastify's own serializer builder, compiling each route's response schema on its first answer. */
export function lazySerializers(...builder: Parameters<ReturnType<typeof SerializerSelector>>) {
  const compile = SerializerSelector()(...builder);
  return (route: Parameters<typeof compile>[0]): Serialize => {
    let compiled: Serialize | undefined;
    return (data) => {
      compiled ??= compile(route) as Serialize;
      return compiled(data);
    };
  };
}
