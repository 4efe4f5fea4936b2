import { defineConfig } from "vite";

// Served by the router at /admin/; built into ui/dist and embedded in the binary.
export default defineConfig({
  base: "/admin/",
  build: { outDir: "dist", emptyOutDir: true, target: "es2020", sourcemap: false },
  test: { environment: "jsdom", include: ["src/**/*.test.ts"] },
} as never);
