// Stages typed as one line ("development, staging, production") to the list the API takes.
export const DEFAULT_STAGES = ['development', 'staging', 'production'];

export function parseStages(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

export function formatStages(stages: string[]): string {
  return stages.join(', ');
}
