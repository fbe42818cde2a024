'use strict';
/**
 * Prints a compiled ARM template without what only says which Bicep build made it (metadata._generator, in the
 * template and in every nested template), so the committed template compares equal whichever Bicep CLI the check
 * found, as long as it compiles the Bicep to the same template.
 *   node scripts/infra/normalize-arm.cjs <template.json>
 */
const { readFileSync } = require('node:fs');

function strip(node) {
    if (Array.isArray(node)) {
        return node.map(strip);
    }
    if (node && typeof node === 'object') {
        const out = {};
        for (const [key, value] of Object.entries(node)) {
            if (key === '_generator') {
                continue;
            }
            out[key] = strip(value);
        }
        return out;
    }
    return node;
}

process.stdout.write(`${JSON.stringify(strip(JSON.parse(readFileSync(process.argv[2], 'utf8'))), null, 2)}\n`);
