import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** A single-page app: the Python server serves build/ at / and falls back to index.html. */
export default {
  preprocess: vitePreprocess(),
  kit: {
    // Separate output directories let two builds run side by side (WEB_BUILD_DIR, WEB_KIT_DIR).
    adapter: adapter({ pages: process.env.WEB_BUILD_DIR ?? 'build', fallback: 'index.html', strict: false }),
    outDir: process.env.WEB_KIT_DIR ?? '.svelte-kit',
    alias: { $api: 'src/lib/api' }
  }
};
