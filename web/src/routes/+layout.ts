// A single-page app: no server rendering, no prerendering; the Python server serves index.html.
export const ssr = false;
export const prerender = false;
