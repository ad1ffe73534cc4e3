import { describe, expect, it } from 'vitest';
import { DEFAULT_STAGES, formatStages, parseStages } from './stages';

describe('stages', () => {
  it('splits on commas, spaces and new lines and drops blanks', () => {
    expect(parseStages(' dev, staging ,,prod\nqa ')).toEqual(['dev', 'staging', 'prod', 'qa']);
    expect(parseStages('  ')).toEqual([]);
  });

  it('round-trips the default list', () => {
    expect(parseStages(formatStages(DEFAULT_STAGES))).toEqual(DEFAULT_STAGES);
  });
});
