// A page that fails in the browser (a chunk that will not load, a component that throws)
// shows the error page with its status; why it failed goes to the console, where the e2e
// tests collect it (tests/e2e/conftest.py) and a person debugging finds it.
import type { HandleClientError } from '@sveltejs/kit';

export const handleError: HandleClientError = ({ error, status, message }) => {
  if (status >= 500) {
    // 404 (a page the UI does not have) is an answer, not a failure.
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`page failed (${status}): ${message}: ${detail}`);
  }
  return { message };
};
