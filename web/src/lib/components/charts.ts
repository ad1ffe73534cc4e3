// The arithmetic of the two pictures (a deploy history strip, a snapshot timeline), kept free
// of Svelte so it can be unit-tested.

export type Outcome = 'succeeded' | 'failed' | 'rolled_back' | 'interrupted' | 'pending';

export type DeployMark = { id: string; at: string; outcome: Outcome };

type DeploymentLike = { id: string; status: string; created_at: string };

/**
 * The last `n` deployments, oldest first. A failed deploy after an earlier success left that
 * earlier version serving (the kind rolls back to it): `rolled_back`; with none before, `failed`.
 */
export function deployMarks(items: DeploymentLike[], n = 30): DeployMark[] {
  const oldestFirst = [...items].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  let succeededBefore = false;
  const marks = oldestFirst.map((d): DeployMark => {
    let outcome: Outcome;
    if (d.status === 'succeeded') outcome = 'succeeded';
    else if (d.status === 'failed') outcome = succeededBefore ? 'rolled_back' : 'failed';
    else if (d.status === 'interrupted') outcome = 'interrupted';
    else outcome = 'pending';
    if (d.status === 'succeeded') succeededBefore = true;
    return { id: d.id, at: d.created_at, outcome };
  });
  return marks.slice(-n);
}

export type Bar = { id: string; at: string; size: number; x: number; height: number };

type SnapshotLike = { id: string; created_at: string; size: number };

/**
 * Snapshots placed on a time axis `width` wide (oldest at 0, newest at width; one alone in the
 * middle) with bar heights proportional to size, the largest `height` tall (never under 2, so
 * an empty snapshot still shows).
 */
export function snapshotBars(items: SnapshotLike[], width: number, height: number): Bar[] {
  if (!items.length) return [];
  const times = items.map((s) => Date.parse(s.created_at));
  const first = Math.min(...times);
  const span = Math.max(...times) - first;
  const biggest = Math.max(...items.map((s) => s.size), 1);
  return items
    .map((s, i) => ({
      id: s.id,
      at: s.created_at,
      size: s.size,
      x: span > 0 ? ((times[i] - first) / span) * width : width / 2,
      height: Math.max(2, (s.size / biggest) * height)
    }))
    .sort((a, b) => a.x - b.x);
}
