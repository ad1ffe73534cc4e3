import { describe, expect, it } from 'vitest';
import { members } from './members';

type Light = 'red' | 'amber' | 'green';

describe('members', () => {
  it('keeps the list as written, in its order', () => {
    expect(members<Light>()(['green', 'amber', 'red'])).toEqual(['green', 'amber', 'red']);
  });

  it('is refused by the compiler when a member is missing or unknown', () => {
    // Checked by `npm run check` (svelte-check): each line must fail to type-check.
    // @ts-expect-error: 'green' is missing
    const missing = members<Light>()(['red', 'amber']);
    // @ts-expect-error: 'blue' is no Light
    const unknown = members<Light>()(['red', 'amber', 'green', 'blue']);
    expect([missing.length, unknown.length]).toEqual([2, 4]);
  });
});
