// Lists the UI keeps of an enum's members, in an order that means something (a restore's
// phases, the capture modes a form offers). The members come from the generated schema
// types, and the compiler refuses a list that misses one or names one the API does not
// have: a new member on the server breaks `npm run check` until the UI knows it.

/** Missing members of T in the list L, as a type the argument cannot satisfy. */
type Complete<T extends string, L extends readonly T[]> = [Exclude<T, L[number]>] extends [never]
  ? unknown
  : { missing: Exclude<T, L[number]> };

/** Every member of T, listed: `members<Schemas['RestorePhase']>()(['queued', …])`. */
export function members<T extends string>() {
  return <const L extends readonly T[]>(list: L & Complete<T, L>): L => list;
}
