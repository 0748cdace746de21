// ESLint with typescript-eslint: the project's linter, run by `npm test` before the specs.
// Type-aware (the TypeScript program of tsconfig.json) because the rules that matter most here
// need the types: a promise nobody awaits or catches is a lost error, or, on the connection path,
// an unhandled rejection that ends the process. Beside those: ESLint's and typescript-eslint's
// recommended rules that need no types (unused variables, imports and expressions among them).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Not await-thenable: it flags Promise.all over `promise | undefined` (`st.socket?.close()`),
      // which is correct code.
      'no-unused-private-class-members': 'error',
      // A variable a closure reads before its one assignment (`let agent; … () => agent?.status(); agent = new Agent(…)`) cannot be const.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Specs match column layouts with literal spaces, as the text shows them.
      'no-regex-spaces': 'off',
      // `_name` says "deliberately unused" (a parameter an interface requires, a skipped element).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
    },
  },
);
