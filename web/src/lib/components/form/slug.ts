// The slug rule the server applies to project, stage, workload and trigger names (SPEC section 1).
export const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function isSlug(value: string): boolean {
  return SLUG.test(value);
}
