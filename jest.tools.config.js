/**
 * Tests that need tools besides Node.js (PowerShell): run by `npm run infra:check` (and so by .ci/run), never by
 * `npm test`, which must pass on a machine with Node.js alone. A missing tool fails them; nothing skips.
 * @type {import('jest').Config}
 */
module.exports = {
    testEnvironment: 'node',
    roots: ['<rootDir>/test'],
    testMatch: ['**/*.tools.test.ts'],
    transform: {
        '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    },
    maxWorkers: 1,
    testTimeout: 120000,
};
