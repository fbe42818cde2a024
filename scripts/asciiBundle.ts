/**
 * Makes the bundle pure ASCII, and moves its source map's columns to match.
 *
 * esbuild escapes non-ASCII characters everywhere but in regular expression literals, and one such literal (in the
 * `open` package, bundled through @azure/identity) is enough for V8 to hold the whole 2.4 MB of app.js as a two-byte
 * string: twice the memory, and the file's read and every later scan of its source slower on each cold start. In a
 * regular expression `\uXXXX` means the same as the character (in `u` mode a surrogate pair's two escapes are one code
 * point, as the pair itself is), and esbuild's output has such characters nowhere else: minified, with comments gone,
 * and strings, templates and identifiers already escaped. A column of the map counts UTF-16 code units of its line, so
 * every mapping after an escaped character on the same line moves right by the five characters it grew.
 */
const base64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const grown = '\\u0000'.length - 1;

export function asciiBundle(js: string, map: string): { js: string; map: string; escaped: number } {
    const lines = js.split('\n');
    const moved = new Map<number, number[]>();
    let escaped = 0;
    const asciiLines = lines.map((line, index) => {
        const at: number[] = [];
        const out = line.replace(/[\u0080-\uffff]/g, (ch, offset: number) => {
            at.push(offset);
            return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
        });
        if (at.length > 0) {
            moved.set(index, at);
            escaped += at.length;
        }
        return out;
    });
    if (escaped === 0) {
        return { js, map, escaped };
    }
    const parsed = JSON.parse(map) as { mappings: string };
    parsed.mappings = parsed.mappings
        .split(';')
        .map((segments, index) => {
            const at = moved.get(index);
            return at ? shiftColumns(segments, at) : segments;
        })
        .join(';');
    return { js: asciiLines.join('\n'), map: JSON.stringify(parsed), escaped };
}

/** One line of mappings with each generated column moved past the characters escaped before it. */
function shiftColumns(segments: string, escapedAt: readonly number[]): string {
    let column = 0;
    let shiftedBefore = 0;
    return segments
        .split(',')
        .map((segment) => {
            if (segment === '') {
                return segment;
            }
            const [delta, rest] = readVlq(segment);
            column += delta;
            const shifted = column + grown * escapedAt.filter((offset) => offset < column).length;
            const out = writeVlq(shifted - shiftedBefore) + rest;
            shiftedBefore = shifted;
            return out;
        })
        .join(',');
}

function readVlq(segment: string): [number, string] {
    let value = 0;
    let shift = 0;
    for (let i = 0; i < segment.length; i++) {
        const digit = base64.indexOf(segment[i]!);
        if (digit < 0) {
            throw new Error(`source map: not a base64 VLQ digit in "${segment}"`);
        }
        value += (digit & 31) << shift;
        shift += 5;
        if ((digit & 32) === 0) {
            const magnitude = value >>> 1;
            return [value & 1 ? -magnitude : magnitude, segment.slice(i + 1)];
        }
    }
    throw new Error(`source map: unterminated VLQ in "${segment}"`);
}

function writeVlq(value: number): string {
    let vlq = value < 0 ? (-value << 1) | 1 : value << 1;
    let out = '';
    do {
        let digit = vlq & 31;
        vlq >>>= 5;
        if (vlq > 0) {
            digit |= 32;
        }
        out += base64[digit];
    } while (vlq > 0);
    return out;
}
