// Pure helpers of the snapshots tab: what to send, what to show, when to poll.
import type { Schemas, Snapshot } from '$lib/api/client';
import { members } from '$lib/api/members';

export type Mode = Schemas['CaptureMode'];
/** The capture modes, in the order the form offers them. */
export const MODES = members<Mode>()(['stop', 'pause', 'none']);

/** Origins the catalog names; anything else (a newer server) is shown as spelled. */
export const ORIGINS = members<Schemas['SnapshotOrigin']>()(['manual', 'scheduled', 'import', 'pre-restore', 'checkpoint', 'recovery-point']);

export const POLL_CAPTURING_MS = 2000;

export function anyCapturing(items: Pick<Snapshot, 'status'>[]): boolean {
  return items.some((s) => s.status === 'capturing');
}

/** Enough of a SHA-256 to tell archives apart at a glance. */
export function shortSha(sha: string): string {
  return sha.slice(0, 12);
}

/** The translation key of an origin, or null to show it raw. */
export function originKey(origin: string): string | null {
  return (ORIGINS as readonly string[]).includes(origin) ? `snapshots.origin.${origin}` : null;
}

/** Capture progress 0-100, or null while the total is unknown (an indeterminate bar). */
export function capturePercent(s: Pick<Snapshot, 'progress_bytes' | 'total_bytes'>): number | null {
  if (s.total_bytes <= 0) return null;
  return Math.max(0, Math.min(100, Math.round((100 * s.progress_bytes) / s.total_bytes)));
}

/** The capture request: `volumes` is left out when every volume is picked, meaning "all". */
export function captureBody(mode: Mode, picked: string[], all: string[]): { mode: Mode; volumes?: string[] } {
  const everything = all.length > 0 && all.every((v) => picked.includes(v));
  // Keep the server's order, whatever order the boxes were ticked in.
  return everything || all.length === 0 ? { mode } : { mode, volumes: all.filter((v) => picked.includes(v)) };
}

/** The list to show from a list answer: the answer, after the snapshots in `started`
 * (those this tab captured after the answer's request was sent) that it lacks. An answer
 * older than a capture would otherwise hide the capture's row until the next poll. */
export function withStarted<T extends Pick<Snapshot, 'id'>>(answer: T[], shown: T[], started: Set<string>): T[] {
  const listed = new Set(answer.map((s) => s.id));
  return [...shown.filter((s) => started.has(s.id) && !listed.has(s.id)), ...answer];
}

/** Snapshots this tab started that have stopped capturing since, to announce them. */
export function settled<T extends Pick<Snapshot, 'id' | 'status'>>(watching: Set<string>, items: T[]): T[] {
  return items.filter((s) => watching.has(s.id) && s.status !== 'capturing');
}

/** The snapshot's volumes with the bytes and files its manifest recorded (null if it did not). */
export function manifestVolumes(s: Pick<Snapshot, 'manifest' | 'volumes'>): { name: string; bytes: number | null; files: number | null }[] {
  const listed = Array.isArray(s.manifest?.volumes) ? (s.manifest.volumes as Record<string, unknown>[]) : [];
  return s.volumes.map((name) => {
    const entry = listed.find((v) => v.name === name);
    return {
      name,
      bytes: typeof entry?.bytes === 'number' ? entry.bytes : null,
      files: typeof entry?.files === 'number' ? entry.files : null
    };
  });
}
