// Names for the ids that deployment reasons carry (trigger:<id>, chain:<id>, promote:<id>),
// fetched once and again when an unknown id shows up (at most every 10 s).
import { api, unwrap } from '$lib/api/client';

const names = $state<Record<string, string>>({});
let fetchedAt = 0;

async function refresh(): Promise<void> {
  fetchedAt = Date.now();
  const [triggers, workloads] = await Promise.all([
    unwrap(api.GET('/api/triggers')),
    unwrap(api.GET('/api/workloads'))
  ]);
  for (const item of [...triggers.items, ...workloads.items]) names[item.id] = item.name;
}

/** The name behind a trigger or workload id, or the id itself until it is known. */
export function nameOf(id: string): string {
  if (!(id in names) && Date.now() - fetchedAt > 10_000) refresh().catch(() => {});
  return names[id] ?? id;
}
