import { type Command, Option } from 'commander';
import { parsePageSize } from './arguments.ts';
import { maxPageSize, type Query } from './client.ts';
import { printJson, printNote, printText } from './output.ts';
import type { Session } from './session.ts';

export interface ListOptions {
  limit?: number;
  all?: boolean;
}

export function addListOptions(command: Command): Command {
  return command
    .addOption(new Option('--limit <n>', `at most this many items (1-${maxPageSize}; with --all, per request)`).argParser(parsePageSize))
    .option('--all', 'every item, following the pages to the end');
}

export interface Listing<T> {
  items: T[];
  more: boolean;
}

/** One page, or with --all every page, of a list endpoint. */
export async function fetchList<T>(session: Session, path: string, query: Query, options: ListOptions): Promise<Listing<T>> {
  if (options.all) return { items: await session.api.all<T>(path, query, options.limit ?? maxPageSize), more: false };
  const page = await session.api.page<T>(path, { ...query, limit: options.limit });
  return { items: page.items, more: page.next_cursor !== null };
}

/** --json: the items array as the API gave them; otherwise a table, and a hint when more pages exist. */
export function printListing<T>(session: Session, listing: Listing<T>, table: (items: T[]) => string): void {
  if (session.json) {
    printJson(listing.items);
    return;
  }
  printText(table(listing.items));
  if (listing.more) printNote(`(more items exist: add --all for every one, or --limit N for up to ${maxPageSize})`);
}
