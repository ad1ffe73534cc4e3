// The decisions behind the restore flow, kept free of Svelte so they can be unit-tested:
// when the typed confirmation counts, how a phase is named, how far along a restore is,
// and how often to ask the server about it.
import type { Restore, Schemas } from '$lib/api/client';
import { members } from '$lib/api/members';

export type Phase = Schemas['RestorePhase'];
/** The phases a restore moves through, in order (moorage/snapshots/restore/run.py). */
export const PHASES = members<Phase>()(['queued', 'verify', 'extract', 'quiesce', 'swap', 'redeploy', 'done']);

/** How a restore ended: every status but `running`. */
export const RESULTS = members<Exclude<Schemas['RestoreStatus'], 'running'>>()(['succeeded', 'failed', 'rolled_back']);

/** The phases a person watches; `done` is the result, not a step. */
export const STEPS = PHASES.filter((p) => p !== 'done');

export type RestoreState = Pick<
  Restore,
  'status' | 'phase' | 'progress_bytes' | 'total_bytes' | 'pre_restore_snapshot_id' | 'kept_paths'
>;

/**
 * The typed text confirms only when it is exactly the workload's name: no trimming and no
 * case folding, because the server compares the X-Confirm-Restore header byte for byte.
 */
export function canConfirm(typed: string, name: string): boolean {
  return name !== '' && typed === name;
}

export type KeyPress = { key: string; isComposing?: boolean; shiftKey?: boolean; altKey?: boolean; ctrlKey?: boolean; metaKey?: boolean };

/** Whether a key press in the confirmation input should start the restore. */
export function enterConfirms(press: KeyPress, typed: string, name: string): boolean {
  // An IME composing text uses Enter to pick a candidate, not to submit.
  if (press.key !== 'Enter' || press.isComposing) return false;
  if (press.shiftKey || press.altKey || press.ctrlKey || press.metaKey) return false;
  return canConfirm(typed, name);
}

export function isPhase(phase: string): phase is Phase {
  return (PHASES as readonly string[]).includes(phase);
}

/** The translation key of a phase; an unknown phase (a newer server) gets a generic one. */
export function phaseKey(phase: string): string {
  return isPhase(phase) ? `restore.phase.${phase}` : 'restore.phase.unknown';
}

/** 1-based step number of a phase among STEPS, or null for `done` and unknown phases. */
export function stepOf(phase: string): number | null {
  const i = (STEPS as readonly string[]).indexOf(phase);
  return i < 0 ? null : i + 1;
}

/** A restore that is no longer running has finished, whatever its result. */
export function isFinished(status: string): boolean {
  return status !== 'running';
}

/**
 * How far the restore got, 0-100, or null when it cannot be told (an indeterminate bar).
 * Only extraction moves bytes; phases after it have extracted everything.
 */
export function progressPercent(r: RestoreState): number | null {
  if (isFinished(r.status)) return 100;
  const after = PHASES.indexOf('extract') < PHASES.indexOf(r.phase);
  if (after) return 100;
  if (r.total_bytes > 0) {
    return Math.max(0, Math.min(100, Math.round((100 * r.progress_bytes) / r.total_bytes)));
  }
  return r.phase === 'extract' ? null : 0;
}

export const POLL_RUNNING_MS = 1000;
export const POLL_PACKING_MS = 2000;
export const MAX_PACKING_POLLS = 30;

/**
 * Whether the data a restore replaced has its outcome: a ready pre-restore snapshot, or
 * directories the server kept on disk because no archive could hold all of their data.
 */
export function isPacked(r: RestoreState): boolean {
  return r.pre_restore_snapshot_id !== null || r.kept_paths.length > 0;
}

/**
 * When to ask the server about a restore again, or null to stop. A running restore is
 * polled every second; after success the replaced data is packed in the background and
 * its outcome shows up a little later, so keep asking for a while.
 */
export function nextPoll(r: RestoreState, pollsSinceFinish: number): number | null {
  if (!isFinished(r.status)) return POLL_RUNNING_MS;
  if (r.status === 'succeeded' && !isPacked(r) && pollsSinceFinish < MAX_PACKING_POLLS) {
    return POLL_PACKING_MS;
  }
  return null;
}

/** The running restore in a list (newest first from the server), if any. */
export function runningOf<T extends { status: string }>(items: T[]): T | undefined {
  return items.find((r) => r.status === 'running');
}
