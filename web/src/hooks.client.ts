// A page that fails in the browser (a chunk that will not load, a component that throws)
// shows the error page with its status; why it failed goes to the console, where the e2e
// tests collect it (tests/e2e/conftest.py) and a person debugging finds it.
//
// A script or stylesheet chunk that did not load (the server busy for a moment, or the UI
// rebuilt by an upgrade while this tab was open: its old chunks are gone) would leave the
// page on the error page. Vite announces a failed preload as `vite:preloadError`; the
// router's own import of a page's module fails with a TypeError whose message browsers
// word differently. Either way the page is loaded again once, and a second failure of the
// same page within a minute is shown as it is.
import type { HandleClientError } from '@sveltejs/kit';

const RELOADED = 'moorage.reloaded';
const CHUNK_FAILED = [
  'Failed to fetch dynamically imported module', // Chromium
  'error loading dynamically imported module', // Firefox
  'Importing a module script failed' // WebKit
];

/** Reload the page unless this page was reloaded for the same reason under a minute ago;
 * true when it reloads. */
function reloadOnce(): boolean {
  const here = location.pathname + location.search;
  let last: { page?: string; at?: number } = {};
  try {
    last = JSON.parse(sessionStorage.getItem(RELOADED) ?? '{}');
  } catch {
    last = {};
  }
  if (last.page === here && Date.now() - (last.at ?? 0) < 60_000) return false;
  sessionStorage.setItem(RELOADED, JSON.stringify({ page: here, at: Date.now() }));
  console.warn(`reloading ${here}: a part of the page did not load`);
  location.reload();
  return true;
}

export const handleError: HandleClientError = ({ error, status, message }) => {
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (CHUNK_FAILED.some((words) => detail.includes(words)) && reloadOnce()) {
    return { message };
  }
  if (status >= 500) {
    // 404 (a page the UI does not have) is an answer, not a failure.
    console.error(`page failed (${status}): ${message}: ${detail}`);
  }
  return { message };
};

window.addEventListener('vite:preloadError', (event) => {
  if (reloadOnce()) event.preventDefault();
});
