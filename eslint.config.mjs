import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
    {
        ignores: [
            'dist-demo/**',
            'demo-output/**',
            'dist/**',
            'node_modules/**',
            'coverage/**',
            '.certs/**',
            '.cache/**',
        ],
    },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        rules: {
            '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
            eqeqeq: ['error', 'always'],
            'no-console': 'off',
        },
    },
    {
        files: ['src/domain/**/*.ts'],
        rules: {
            // The domain is pure: it may not reach for an SDK, the network or the clock's side effects.
            'no-restricted-imports': [
                'error',
                {
                    patterns: [
                        '@azure/*',
                        '@microsoft/*',
                        'node:*',
                        'zod',
                        'jose',
                        '../arm/*',
                        '../storage/*',
                        '../teams/*',
                    ],
                },
            ],
        },
    },
    {
        files: ['scripts/**/*.js', 'scripts/**/*.cjs', 'bench/**/*.cjs', 'test/**/*.cjs', '*.js'],
        languageOptions: {
            sourceType: 'commonjs',
            globals: {
                require: 'readonly',
                module: 'writable',
                __dirname: 'readonly',
                process: 'readonly',
                console: 'readonly',
                globalThis: 'readonly',
            },
        },
        rules: { '@typescript-eslint/no-require-imports': 'off' },
    },
);
