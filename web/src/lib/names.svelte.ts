// Names for the ids that deployment reasons (trigger:<id>, chain:<id>, promote:<id>) and audit
// rows carry, fetched once and again when an unknown id shows up (at most every 10 s). Users
// are listed for admins only: for others that list is simply left out.
import { api, unwrap } from '$lib/api/client';

const names = $state<Record<string, string>>({});
let fetchedAt = 0;

async function refresh(): Promise<void> {
  fetchedAt = Date.now();
  const lists = await Promise.allSettled([
    unwrap(api.GET('/api/triggers')).then((r) => r.items.map((x) => [x.id, x.name])),
    unwrap(api.GET('/api/workloads')).then((r) => r.items.map((x) => [x.id, x.name])),
    unwrap(api.GET('/api/projects')).then((r) => r.items.map((x) => [x.id, x.slug])),
    unwrap(api.GET('/api/users')).then((r) => r.items.map((x) => [x.id, x.username]))
  ]);
  for (const list of lists) if (list.status === 'fulfilled') for (const [id, name] of list.value) names[id] = name;
}

/** The name behind a trigger, workload, project or user id, or the id itself until it is known. */
export function nameOf(id: string): string {
  if (!(id in names) && Date.now() - fetchedAt > 10_000) refresh().catch(() => {});
  return names[id] ?? id;
}
