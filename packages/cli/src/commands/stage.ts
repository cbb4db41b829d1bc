import type { StageRequest, StageResult } from '@muster/contract';
import { MusterError } from '@muster/contract/errors.ts';
import { Command } from 'commander';
import { printJson, printNote, printText, renderTable } from '../output.ts';
import { Owners, openRootfs, type WrittenFile, writeRootfsFile } from '../rootfs.ts';
import { openSession } from '../session.ts';

// `muster stage` (docs/stage.md, seed 002): the server makes the machine, its secret and its account; this writes
// the files it answers into the root filesystem being staged. The account hook and checks can take a while.
const stageTimeoutMs = 15 * 60_000;

interface StageOptions {
  serial: string;
  rootfs: string;
  profile?: string;
  verify?: boolean;
  rotateSecret?: boolean;
}

function summary(result: StageResult): string {
  const parts = [
    `machine ${result.machine_id}${result.created ? ' (new)' : ''}`,
    `hostname ${result.hostname ?? '-'}`,
    `profile ${result.profile} v${result.profile_version}`,
    `account ${result.account ?? '-'}`,
    `secret ${result.secret ?? '-'}`,
  ];
  return `staged serial ${result.serial}: ${parts.join(', ')}`;
}

async function writeFiles(root: string, result: StageResult): Promise<WrittenFile[]> {
  const owners = new Owners(root);
  const written: WrittenFile[] = [];
  for (const file of result.files) {
    try {
      written.push(await writeRootfsFile(root, file, owners));
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new MusterError(
        error instanceof MusterError ? error.code : 'internal',
        `${why}; the machine is staged (account ${result.account ?? 'not touched'}): fix this and run the same command again, which keeps its secret`,
      );
    }
  }
  return written;
}

export function stageCommand(): Command {
  return new Command('stage')
    .description("stage a machine's identity into a root filesystem before flashing: its secret, its account and its files")
    .requiredOption('--serial <serial>', "the machine's serial, as on its label")
    .requiredOption('--rootfs <dir>', 'the root filesystem being staged; files are written under it')
    .option('--profile <profile>', 'the profile to give the machine (default: the one it has), at its current version')
    .option('--verify', "run the profile's checks after the account hook; a failing check exits 1")
    .option('--rotate-secret', 'make a new machine secret instead of keeping the stored one')
    .addHelpText(
      'after',
      '\nExample:\n  muster stage --serial AZJN-0042 --profile jetson --rootfs /work/images/orin-nano/rootfs-staging --verify',
    )
    .action(async (options: StageOptions, command: Command) => {
      const root = await openRootfs(options.rootfs);
      const session = await openSession(command, { timeoutMs: stageTimeoutMs });
      const body: StageRequest = {
        serial: options.serial,
        profile: options.profile,
        verify: options.verify,
        rotate_secret: options.rotateSecret,
      };
      const result = await session.api.post<StageResult>('/stage', body);
      const written = await writeFiles(root, result);
      if (session.json) {
        printJson({
          ...result,
          files: result.files.map(({ content: _, ...file }, i) => ({
            ...file,
            written: written[i].path,
            owner_set: !written[i].ownerNotSet,
          })),
        });
      } else {
        printText(summary(result));
        if (written.length > 0)
          printText(
            renderTable(
              ['WROTE', 'MODE', 'OWNER'],
              written.map((f) => [f.path, f.mode, f.ownerNotSet ? `${f.owner} (not set: ${f.ownerNotSet})` : f.owner]),
            ),
          );
        if (result.checks?.length)
          printText(
            renderTable(
              ['CHECK', 'OK', 'STATUS'],
              result.checks.map((c) => [c.name, c.ok ? 'yes' : 'no', c.status ?? c.error]),
            ),
          );
      }
      const failed = (result.checks ?? []).filter((c) => !c.ok);
      if (failed.length > 0) {
        printNote(
          `muster: check ${failed.map((c) => `${c.name} (${c.status ?? c.error})`).join(', ')} failed; the account step had already run and the files are written`,
        );
        process.exitCode = 1;
      }
    });
}
