// What a workload's drills say, for "verified restorable N hours ago" and the red mark.
import type { Schemas } from '$lib/api/client';

export type Standing = Schemas['DrillStanding'];

/** The standings keyed by workload id. */
export function byWorkload(items: Standing[]): Map<string, Standing> {
  return new Map(items.map((s) => [s.workload_id, s]));
}

/** The latest drill failed: the red mark, whatever passed before. */
export function latestFailed(s: Standing | undefined): boolean {
  return s?.last_status === 'failed';
}

/** Poll a running drill again after this many ms, and stop once it ended. */
export const POLL_DRILL_MS = 1000;

export function drillEnded(status: string | undefined): boolean {
  return status === 'passed' || status === 'failed';
}
