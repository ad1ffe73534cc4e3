// Placeholders for a generated form, handed from SchemaForm to every input through context.
import { getContext, setContext } from 'svelte';
import type { Field } from './schema';

export type Hint = (field: Field, path: string) => string;
const KEY = Symbol('schema-form-hint');

export function setHint(hint: Hint): void {
  setContext(KEY, hint);
}

export function getHint(): Hint {
  return getContext<Hint | undefined>(KEY) ?? (() => '');
}
