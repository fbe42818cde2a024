import { SourceMap } from 'node:module';
import { buildSync } from 'esbuild';
import { asciiBundle } from '../../scripts/asciiBundle';

/** A module whose regular expressions esbuild leaves non-ASCII, with a marker after them on the same line. */
const source = [
    "export const quote = (t: string) => String(t).replaceAll(/['‘’‚‛]/g, (q) => q + q);",
    'export const emoji = (t: string) => /😀+/u.test(t) && /é/.test(t);',
    'export function markerAfterRegex(): string { return quote("it’s") + String(emoji("😀😀é")); }',
].join('\n');

function bundled(): { js: string; map: string } {
    const out = buildSync({
        stdin: { contents: source, loader: 'ts', sourcefile: 'input.ts' },
        bundle: true,
        format: 'cjs',
        platform: 'node',
        minify: true,
        keepNames: true,
        sourcemap: 'external',
        outfile: 'out.js',
        write: false,
    });
    const text = (suffix: string) => out.outputFiles.find((f) => f.path.endsWith(suffix))!.text;
    return { js: text('.js'), map: text('.js.map') };
}

function run(js: string): unknown {
    const module = { exports: {} as Record<string, () => unknown> };
    new Function('module', 'exports', 'require', js)(module, module.exports, require);
    return module.exports.markerAfterRegex!();
}

describe('asciiBundle', () => {
    it('escapes what esbuild left non-ASCII, and the code means the same', () => {
        const before = bundled();
        expect(/[\u0080-\uffff]/.test(before.js)).toBe(true);
        const after = asciiBundle(before.js, before.map);
        expect(/[\u0080-\uffff]/.test(after.js)).toBe(false);
        expect(after.escaped).toBeGreaterThanOrEqual(7);
        expect(run(after.js)).toBe(run(before.js));
        expect(run(after.js)).toBe('it’’s' + 'true');
    });

    it('moves the map with the code: a call after an escaped character still maps to its source', () => {
        const before = bundled();
        const after = asciiBundle(before.js, before.map);
        // `String(` of markerAfterRegex: minified, the only one with a call inside (quote's is `String(t)`).
        const origin = (js: string, map: string) => {
            const lines = js.split('\n');
            const line = lines.findIndex((l) => /String\(\w+\(/.test(l));
            const column = lines[line]!.search(/String\(\w+\(/);
            const entry = new SourceMap(JSON.parse(map)).findEntry(line, column) as {
                originalLine: number;
                originalColumn: number;
            };
            return [entry.originalLine, entry.originalColumn];
        };
        const expected = [2, source.split('\n')[2]!.indexOf('String(emoji')];
        expect(origin(before.js, before.map)).toEqual(expected);
        expect(origin(after.js, after.map)).toEqual(expected);
        // Unmoved, the old map would point elsewhere: the test can tell a shifted map from an unshifted one.
        expect(origin(after.js, before.map)).not.toEqual(expected);
    });

    it('leaves an ASCII bundle and its map as they are', () => {
        const js = 'var a=/x/g;';
        const map = '{"version":3,"mappings":"AAAA"}';
        expect(asciiBundle(js, map)).toEqual({ js, map, escaped: 0 });
    });
});
