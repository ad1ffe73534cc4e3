// The kinds the server knows (GET /api/kinds), fetched once per page load. Components branch
// on what a kind declares it can do (`capabilities`), never on its name.
import { api, unwrap, type Kind } from '$lib/api/client';

export type Capability = NonNullable<Kind['capabilities']>[number];

const known = $state<{ items: Kind[]; loaded: boolean }>({ items: [], loaded: false });
let pending: Promise<Kind[]> | null = null;

export function loadKinds(): Promise<Kind[]> {
  pending ??= unwrap(api.GET('/api/kinds')).then(
    (out) => {
      known.items = out.items;
      known.loaded = true;
      return out.items;
    },
    (e) => {
      pending = null; // a later call tries again
      throw e;
    }
  );
  return pending;
}

/** The source kind named `kind`, once loaded. */
export function sourceKind(kind: string): Kind | undefined {
  return known.items.find((k) => k.category === 'source' && k.kind === kind);
}

/** Whether the kind declares `capability`; undefined until the kinds are loaded. */
export function can(kind: string, capability: Capability): boolean | undefined {
  if (!known.loaded) return undefined;
  return sourceKind(kind)?.capabilities?.includes(capability) ?? false;
}
