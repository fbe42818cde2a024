/**
 * Imported first by the demo (scripts/demo.ts): answers `require('@azure/functions-core')` as the Functions worker
 * does, with the stand-in of scripts/functions-host.cjs, so @azure/functions registers the app's functions as in Azure
 * instead of switching to its "test mode" and printing a WARNING per function before the demo's own output (a
 * newcomer's first `npm run demo` then starts clean). The demo still calls the handlers directly.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

// From the sources (scripts/) or from the compiled demo (dist-demo/scripts/).
const hostFile = [
    path.join(__dirname, 'functions-host.cjs'),
    path.join(__dirname, '..', '..', 'scripts', 'functions-host.cjs'),
].find((file) => existsSync(file));
if (!hostFile) {
    throw new Error('scripts/functions-host.cjs not found next to the demo');
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { installFunctionsHost } = require(hostFile) as { installFunctionsHost: () => unknown };
installFunctionsHost();
