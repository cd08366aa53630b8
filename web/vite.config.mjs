// Vite builds the UI into one hashed JS and CSS file under assets/ (the
// build directory passes --outDir). Nothing is loaded from elsewhere: the
// binary embeds the output and serves it under a strict CSP.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0, // no data: URLs; the CSP allows only 'self'
    sourcemap: false,
    reportCompressedSize: false,
  },
});
