import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [sveltekit()],
  server: { proxy: { '/api': 'http://127.0.0.1:8700', '/hooks': 'http://127.0.0.1:8700' } },
  test: { include: ['src/**/*.test.ts'], environment: 'node' }
});
