import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import {
    buildDocCards,
    CARD_MARGIN,
    CARD_WIDTH,
    COLLAPSED_MAX_HEIGHT,
    DEVICE_SCALE_FACTOR,
    docCardFiles,
    DOCS_CARDS_DIR,
    PNG_MAX_BYTES,
    pngSize,
    toPalettePng,
} from '../../scripts/docs-cards';

/**
 * The committed card previews against the card builder, without a browser: the JSON next to each image must be what
 * the builder renders now from the script's sample data, so a card change that was not re-rendered fails here instead
 * of leaving the docs showing an older card. The images are only checked for being the PNGs the script writes; whether
 * they match their JSON is on whoever ran the script.
 */

const rerun = 'Run `npm run docs:cards` and commit docs/cards.';
const cards = buildDocCards();
const names = cards.map((c) => c.name);

describe('docs/cards', () => {
    it('holds the files of the cards the script renders, and nothing else', () => {
        const expected = names.flatMap(docCardFiles).sort();
        const files = existsSync(DOCS_CARDS_DIR) ? readdirSync(DOCS_CARDS_DIR) : [];
        const missing = expected.filter((f) => !files.includes(f));
        const extra = files.filter((f) => !expected.includes(f));
        if (missing.length > 0) {
            throw new Error(`docs/cards lacks ${missing.join(', ')}. ${rerun}`);
        }
        if (extra.length > 0) {
            throw new Error(`docs/cards holds ${extra.join(', ')}, which the script does not write: delete them.`);
        }
    });

    it.each(cards.map((card) => [card.name, card] as const))(
        '%s.json is what the card builder renders now',
        (name, card) => {
            const file = path.join(DOCS_CARDS_DIR, `${name}.json`);
            if (!existsSync(file)) {
                throw new Error(`docs/cards/${name}.json is missing. ${rerun}`);
            }
            const committed: unknown = JSON.parse(readFileSync(file, 'utf8'));
            // Through JSON, as the script wrote it, so an undefined member does not count as a difference.
            const now: unknown = JSON.parse(JSON.stringify(card.json));
            try {
                expect(committed).toEqual(now);
            } catch (err) {
                // The diff says what changed; the message says what to do about it.
                throw new Error(
                    `docs/cards/${name}.json is behind the card builder. ${rerun}\n\n${(err as Error).message}`,
                );
            }
        },
    );

    it.each(names.flatMap((name) => [`${name}.png`, `${name}-details.png`]))(
        '%s is a card preview of the rendered width, within the size budget',
        (file) => {
            const full = path.join(DOCS_CARDS_DIR, file);
            if (!existsSync(full)) {
                throw new Error(`docs/cards/${file} is missing. ${rerun}`);
            }
            const bytes = readFileSync(full);
            const size = pngSize(bytes);
            expect(size).toBeDefined();
            // The screenshot is of the card and its margin at the device scale factor, whatever the card's height.
            expect(size!.width).toBe((CARD_WIDTH + 2 * CARD_MARGIN) * DEVICE_SCALE_FACTOR);
            if (!file.endsWith('-details.png')) {
                // The collapsed card as committed: about one screen (the browser test holds the builder to it).
                expect(size!.height).toBeLessThanOrEqual(
                    (COLLAPSED_MAX_HEIGHT + 2 * CARD_MARGIN) * DEVICE_SCALE_FACTOR,
                );
            }
            expect(bytes.length).toBeLessThanOrEqual(PNG_MAX_BYTES);
        },
    );
});

describe('toPalettePng', () => {
    /** A truecolour PNG with each row under a different filter, as Chromium writes them. */
    function truecolourPng(pixels: number[][][]): Buffer {
        const height = pixels.length;
        const width = pixels[0]!.length;
        const stride = width * 3;
        const raw = pixels.map((row) => Buffer.from(row.flat()));
        const filtered = raw.map((row, y) => {
            const type = y % 5;
            const above = y > 0 ? raw[y - 1]! : Buffer.alloc(stride);
            const out = Buffer.alloc(stride + 1);
            out[0] = type;
            for (let x = 0; x < stride; x++) {
                const a = x >= 3 ? row[x - 3]! : 0;
                const b = above[x]!;
                const c = x >= 3 ? above[x - 3]! : 0;
                const p = a + b - c;
                const paeth =
                    Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
                        ? a
                        : Math.abs(p - b) <= Math.abs(p - c)
                          ? b
                          : c;
                const predicted = [0, a, b, (a + b) >> 1, paeth][type]!;
                out[x + 1] = (row[x]! - predicted) & 255;
            }
            return out;
        });
        const header = Buffer.alloc(13);
        header.writeUInt32BE(width, 0);
        header.writeUInt32BE(height, 4);
        header.set([8, 2, 0, 0, 0], 8);
        // Only the IHDR and IDAT bodies are read, so the CRCs can stay zero.
        const chunk = (type: string, body: Buffer) => {
            const length = Buffer.alloc(4);
            length.writeUInt32BE(body.length);
            return Buffer.concat([length, Buffer.from(type, 'latin1'), body, Buffer.alloc(4)]);
        };
        return Buffer.concat([
            Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
            chunk('IHDR', header),
            chunk('IDAT', deflateSync(Buffer.concat(filtered))),
            chunk('IEND', Buffer.alloc(0)),
        ]);
    }

    /** The colours of a palette PNG written by toPalettePng (filter 0 on every row). */
    function decodePalette(png: Buffer): number[][][] {
        const { width, height } = pngSize(png)!;
        expect(png[25]).toBe(3);
        const chunks = new Map<string, Buffer>();
        for (let at = 8; at < png.length;) {
            const length = png.readUInt32BE(at);
            chunks.set(png.toString('latin1', at + 4, at + 8), png.subarray(at + 8, at + 8 + length));
            at += 12 + length;
        }
        const plte = chunks.get('PLTE')!;
        const rows = inflateSync(chunks.get('IDAT')!);
        return Array.from({ length: height }, (_, y) => {
            expect(rows[y * (width + 1)]).toBe(0);
            return Array.from({ length: width }, (_, x) => {
                const i = rows[y * (width + 1) + 1 + x]!;
                return [plte[i * 3]!, plte[i * 3 + 1]!, plte[i * 3 + 2]!];
            });
        });
    }

    it('keeps every pixel of an image with few colours, whatever the row filters', () => {
        const colours = [
            [255, 255, 255],
            [36, 36, 36],
            [196, 49, 75],
            [91, 95, 199],
            [245, 245, 245],
        ];
        const pixels = Array.from({ length: 10 }, (_, y) =>
            Array.from({ length: 7 }, (_, x) => colours[(x * 3 + y * 2) % colours.length]!),
        );
        const { png, remapped } = toPalettePng(truecolourPng(pixels));
        expect(remapped).toBe(0);
        expect(pngSize(png)).toEqual({ width: 7, height: 10 });
        expect(decodePalette(png)).toEqual(pixels);
    });

    it('gives the colours beyond 256 the nearest palette colour, and counts them', () => {
        // 256 reds twice each make the palette; 44 colours seen once, one step from a red, take that red.
        const reds = Array.from({ length: 256 }, (_, i) => [i, 0, 0]);
        const rare = Array.from({ length: 44 }, (_, i) => [i * 5, 0, 1]);
        const pixels = [[...reds, ...reds, ...rare]];
        const { png, remapped } = toPalettePng(truecolourPng(pixels));
        expect(remapped).toBeCloseTo(44 / pixels[0]!.length);
        expect(decodePalette(png)).toEqual([[...reds, ...reds, ...rare.map(([r]) => [r!, 0, 0])]]);
    });
});
