import { pino } from 'pino';
import pretty from 'pino-pretty';

/** pretty: a line per entry, for people; json: a JSON object per line, for collectors. */
export type LogFormat = 'pretty' | 'json';

// Never log credentials: headers that carry them and body fields that are secrets.
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  '*.password',
  '*.token',
  '*.setup_code',
  'body.code',
];

/** Lines for people on a terminal, JSON for log collectors everywhere else. */
export function defaultLogFormat(stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return stdout.isTTY ? 'pretty' : 'json';
}

/**
 * The server's logger: ISO times in both formats; `pretty` is one readable line per entry, written in this
 * process (no transport thread) so that nothing is lost at exit.
 */
export function createLogger(options: { level: string; format: LogFormat; destination?: NodeJS.WritableStream }) {
  const settings = {
    level: options.level,
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.format === 'json') return options.destination ? pino(settings, options.destination) : pino(settings);
  return pino(
    settings,
    pretty({
      sync: true,
      destination: options.destination ?? 1,
      colorize: options.destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l o',
      ignore: 'pid,hostname,reqId',
      singleLine: true,
    }),
  );
}
