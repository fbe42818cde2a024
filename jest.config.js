/** @type {import('jest').Config} */
module.exports = {
    testEnvironment: 'node',
    roots: ['<rootDir>/test'],
    testMatch: ['**/*.test.ts'],
    // *.tools.test.ts need PowerShell: `npm run infra:check` runs them (jest.tools.config.js).
    testPathIgnorePatterns: ['/node_modules/', '\\.tools\\.test\\.ts$'],
    transform: {
        '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    },
    globalSetup: '<rootDir>/test/setup/globalSetup.ts',
    globalTeardown: '<rootDir>/test/setup/globalTeardown.ts',
    setupFiles: ['<rootDir>/test/setup/env.ts'],
    maxWorkers: 2,
    testTimeout: 30000,
};
