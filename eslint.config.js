// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'out/',
      '.wrangler/',
      '.shapguard/',
      'test/fixtures/models/',
      'test/*.tmp.ts',
      'src/core/model/onnx/onnx_pb.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', performance: 'readonly' } },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The engine runs in workerd as it runs in Node: tfjs and Web APIs only.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*', 'fs', 'path', 'os', 'crypto', 'child_process'], message: 'src/core must run in workerd: Web APIs only.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'src/core must run in workerd.' },
        { name: 'Buffer', message: 'src/core must run in workerd: use Uint8Array.' },
        { name: 'require', message: 'ES modules only.' },
      ],
    },
  },
);
