/** Machine states and the one table of allowed transitions (DESIGN.md, "Machine lifecycle"). */
export const machineStates = [
  'discovered',
  'enrolled',
  'configured',
  'building',
  'ready',
  'provisioning',
  'provisioned',
  'failed',
  'retired',
] as const;

export type MachineState = (typeof machineStates)[number];

export const transitions: Readonly<Record<MachineState, readonly MachineState[]>> = {
  discovered: ['enrolled', 'retired'],
  enrolled: ['configured', 'retired'],
  configured: ['enrolled', 'building', 'retired'],
  building: ['ready', 'failed', 'retired'],
  ready: ['configured', 'building', 'provisioning', 'retired'],
  provisioning: ['provisioned', 'failed', 'retired'],
  provisioned: ['ready', 'configured', 'retired'],
  failed: ['configured', 'building', 'retired'],
  retired: ['enrolled'],
};

export function allowedTransitions(from: MachineState): readonly MachineState[] {
  return transitions[from];
}

export function canTransition(from: MachineState, to: MachineState): boolean {
  return transitions[from].includes(to);
}
