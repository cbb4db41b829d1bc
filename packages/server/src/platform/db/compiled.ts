import { type Compilable, CompiledQuery, type Kysely, type QueryResult } from 'kysely';

// SQL text by shape, per database: SQLite and PostgreSQL compile one shape differently, and a test process opens both.
const sqlByAdapter = new WeakMap<object, Map<string, string | null>>();
const maxShapes = 256;

/**
 * Runs a query whose SQL depends only on its shape (its table, its columns, how many rows or conditions), compiled by
 * Kysely the first time that shape is seen and bound to `parameters` after that. Building and compiling a query
 * costs more CPU than SQLite takes to run it, and enrollment, the hottest write, runs four of them
 * (bench/README.md). `parameters` are the values in the order Kysely binds them: the first compile of a shape
 * checks that they are, and a shape where they are not is compiled every time, as any other query.
 */
export function executeByShape<DB, R>(
  db: Kysely<DB>,
  shape: string,
  query: () => Compilable<R>,
  parameters: readonly unknown[],
): Promise<QueryResult<R>> {
  const adapter = db.getExecutor().adapter;
  let shapes = sqlByAdapter.get(adapter);
  if (!shapes) {
    shapes = new Map();
    sqlByAdapter.set(adapter, shapes);
  }
  const known = shapes.get(shape);
  if (typeof known === 'string') return db.executeQuery(CompiledQuery.raw(known, [...parameters]) as CompiledQuery<R>);
  const compiled = query().compile();
  if (known === undefined && shapes.size < maxShapes) {
    const same = compiled.parameters.length === parameters.length && compiled.parameters.every((value, i) => value === parameters[i]);
    shapes.set(shape, same ? compiled.sql : null);
  }
  return db.executeQuery(compiled);
}
