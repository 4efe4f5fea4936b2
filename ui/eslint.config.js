// The console's linter: ESLint's and typescript-eslint's recommended rules, with type
// information, over the sources and tests (the build output is not linted).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Event handlers given to `h()` may be async: `act()` catches and shows their errors, so
      // a promise where a void is expected is not lost. Floating promises elsewhere are errors.
      "@typescript-eslint/no-misused-promises": [
        "error",
        { checksVoidReturn: { arguments: false, properties: false } },
      ],
      eqeqeq: ["error", "always"],
      "no-console": "error",
    },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
);
