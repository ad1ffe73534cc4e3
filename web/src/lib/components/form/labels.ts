// Translated names for things the backend names by code (kinds, audit actions), with the code as
// the fallback so a plugin or action the UI does not know yet still shows something readable.
import { t } from '$lib/i18n/index.svelte';
import type { Field } from './schema';

export function tOr(key: string, fallback: string): string {
  const text = t(key);
  return text === key ? fallback : text;
}

export function kindTitle(kind: string): string {
  return tOr(`kinds.${kind}.title`, kind);
}

export function kindDescription(kind: string, fallback: string): string {
  return tOr(`kinds.${kind}.description`, fallback);
}

/** A field's label in the UI's language: `schemas.<Model>.<field>.label`, else the schema's own. */
export function fieldLabel(field: Field): string {
  return field.model ? tOr(`schemas.${field.model}.${field.key}.label`, field.label) : field.label;
}

export function fieldHelp(field: Field): string {
  return field.model ? tOr(`schemas.${field.model}.${field.key}.help`, field.help) : field.help;
}

/** An enum member's name in the UI's language: `schemas.<Model>.<field>.options.<value>`, else the value. */
export function optionLabel(field: Field, option: string): string {
  return field.model ? tOr(`schemas.${field.model}.${field.key}.options.${option}`, option) : option;
}
