import { defineConfig } from "vite";

// Tauri serves ui/dist; the dev server is for `tauri dev` only.
export default defineConfig({
  clearScreen: false,
  server: { port: 5173, strictPort: true, host: "127.0.0.1" },
  build: { outDir: "dist", emptyOutDir: true, target: "safari15" },
});
