/** What dnsmasq said about one TFTP transfer. */
export type TftpLogEvent =
  | { kind: 'sent' | 'failed' | 'not_found' | 'denied'; path: string; client: string | null }
  | { kind: 'client_error'; path: null; client: string };

/**
 * dnsmasq's TFTP messages (src/tftp.c, 2.90 and later), each after `dnsmasq-tftp[PID]: `:
 *   my_syslog(MS_TFTP | LOG_INFO, _("sent %s to %s"), namebuff, addrbuff)
 *   my_syslog(MS_TFTP | LOG_ERR, _("failed sending %s to %s"), …) and _("timeout sending %s to %s")
 *   tftp_err(ERR_FNF, …, _("file %s not found for %s"), namebuff, client)   (older: "file %s not found")
 *   tftp_err(ERR_PERM, …, _("cannot access %s: %s"), namebuff, strerror(EACCES)) and _("cannot read %s: %s")
 *   my_syslog(MS_TFTP | LOG_ERR, _("error %d %s received from %s"), code, message, addrbuff)
 * namebuff is the path on disk: the tftp-root, '/', then the name as the client sent it (doubled slashes kept).
 * Versions before 2.x logged the same under `dnsmasq[PID]: TFTP …`.
 */
const messages: [RegExp, (m: RegExpExecArray) => TftpLogEvent][] = [
  [/^sent (.+) to (\S+)$/, (m) => ({ kind: 'sent', path: m[1], client: m[2] })],
  [/^(?:failed|timeout) sending (.+) to (\S+)$/, (m) => ({ kind: 'failed', path: m[1], client: m[2] })],
  [/^file (.+) not found for (\S+)$/, (m) => ({ kind: 'not_found', path: m[1], client: m[2] })],
  [/^file (.+) not found$/, (m) => ({ kind: 'not_found', path: m[1], client: null })],
  [/^cannot (?:access|read) (.+?): [^:]+$/, (m) => ({ kind: 'denied', path: m[1], client: null })],
  [/^error \d+ .* received from (\S+)$/, (m) => ({ kind: 'client_error', path: null, client: m[1] })],
];

/**
 * The message of a dnsmasq TFTP log line, whatever came before it: a log-facility file
 * (`Nov 23 18:43:00 dnsmasq-tftp[812]: …`), syslog or journalctl (`… host dnsmasq-tftp[812]: …`),
 * RFC 3339 timestamps, or nothing (`--log-facility=-` in the foreground).
 */
const prefix = /(?:^|\s)dnsmasq(-tftp)?\[\d+\]:\s(.*)$/;

export function parseTftpLogLine(line: string): TftpLogEvent | null {
  const found = prefix.exec(line.replace(/\r$/, ''));
  if (!found) return null;
  let message = found[2].trim();
  if (!found[1]) {
    if (!message.startsWith('TFTP ')) return null;
    message = message.slice(5);
  }
  for (const [pattern, event] of messages) {
    const m = pattern.exec(message);
    if (m) return event(m);
  }
  return null;
}
