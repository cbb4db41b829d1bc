import { accessSync, constants, existsSync, statSync } from 'node:fs';
import type { TestTool } from './list.ts';

/** What a look at one tool found: there and usable, not there, or there but not usable (e.g. not executable). */
export type ToolState = 'ok' | 'missing' | 'broken';

export interface Machine {
  /** Running as root, so packages can be installed. */
  root: boolean;
  /** apt-get is there (a Debian-like system). */
  apt: boolean;
}

export type ToolPlan =
  | { action: 'none' }
  | { action: 'install'; packages: string[]; reinstall: string[] }
  | { action: 'stop'; lines: string[] };

/**
 * Decides what the test command's set-up does: nothing when every tool is usable; install the missing
 * packages (and reinstall the broken ones) as root on a Debian-like system; elsewhere stop with one line per
 * tool that cannot run and the command that installs them all.
 */
export function planToolSetup(tools: readonly TestTool[], state: (tool: TestTool) => ToolState, machine: Machine): ToolPlan {
  const missing = tools.filter((tool) => state(tool) === 'missing');
  const broken = tools.filter((tool) => state(tool) === 'broken');
  if (missing.length === 0 && broken.length === 0) return { action: 'none' };
  const packagesOf = (list: TestTool[]) => [...new Set(list.map((tool) => tool.package))];
  if (machine.root && machine.apt) {
    const reinstall = packagesOf(broken);
    return { action: 'install', packages: packagesOf(missing).filter((p) => !reinstall.includes(p)), reinstall };
  }
  return { action: 'stop', lines: stopLines(missing, broken, machine) };
}

/** One line per tool that cannot run, then how to install them. */
export function stopLines(missing: TestTool[], broken: TestTool[], machine: Machine): string[] {
  const lines = [
    ...missing.map((tool) => `missing: ${tool.name} (${tool.path}, Debian package ${tool.package}), for the ${tool.usedBy}`),
    ...broken.map((tool) => `not usable: ${tool.name} (${tool.path}, Debian package ${tool.package}), for the ${tool.usedBy}`),
  ];
  const packages = [...new Set([...missing, ...broken].map((tool) => tool.package))].join(' ');
  const sudo = machine.root ? '' : 'sudo ';
  const reinstall = broken.length > 0 ? ' --reinstall' : '';
  lines.push(
    machine.apt
      ? `install them with: ${sudo}apt-get install${reinstall} ${packages}   (or run 'npm test' as root, which does it)`
      : `install the equivalents of these Debian packages: ${packages}`,
  );
  return lines;
}

/** Looks at one tool where the tests expect it: a program must be executable, a file readable. */
export function toolState(tool: TestTool): ToolState {
  if (!existsSync(tool.path)) return 'missing';
  try {
    if (!statSync(tool.path).isFile()) return 'broken';
    accessSync(tool.path, tool.kind === 'program' ? constants.X_OK : constants.R_OK);
    return 'ok';
  } catch {
    return 'broken';
  }
}
