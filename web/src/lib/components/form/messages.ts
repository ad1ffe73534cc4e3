// Field errors as text: client checks and page checks by code, server messages as the server put them.
import type { FieldError, Params } from './schema';

type Translate = (key: string, params?: Params) => string;

export function fieldErrorText(e: FieldError, t: Translate): string {
  if (e.code === 'server') return t(e.path ? 'form.errors.server' : 'form.errors.server_field', e.params);
  return t(`form.errors.${e.code}`, e.params);
}
