/**
 * `npx tsx scripts/teams-app-icons.ts`: draws the Teams app's two icons, teams-app/color.png and teams-app/outline.png.
 * Run once and committed; the test checks the committed files are what this draws, so a change to the drawing shows up.
 *
 * Also the PNG reader that scripts/teams-app.ts and the tests use to check the icons' sizes and transparency. Both
 * halves are written out here (deflate comes from node:zlib) rather than taken from an image package: Teams needs
 * only two small RGBA images, and a minimal, dependency-free PNG codec is about a hundred lines.
 *
 * The glyph is a shield with a check mark: a guard that approves. Teams asks for a 192×192 full-colour icon (the
 * symbol on a solid background that matches the manifest's accentColor) and a 32×32 outline: white on a transparent
 * background, nothing else, as Teams tints it itself.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';

/** The manifest's accentColor: the colour icon's background. */
export const accentColor = '#0F6CBD';

export const colorIconSize = 192;
export const outlineIconSize = 32;

// ---- PNG encoding and decoding ----

const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Colour type 6: 8-bit red, green, blue and alpha per pixel. */
const colourTypeRgba = 6;

const crcTable = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) {
            c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        }
        table[n] = c >>> 0;
    }
    return table;
})();

/** CRC-32 as PNG (and zlib) define it, over a chunk's type and data. */
export function crc32(bytes: Uint8Array): number {
    let c = 0xffffffff;
    for (const byte of bytes) {
        c = (crcTable[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
    }
    return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
    const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    typeAndData.copy(out, 4);
    out.writeUInt32BE(crc32(typeAndData), 8 + data.length);
    return out;
}

/** An RGBA image: `pixels` holds width × height × 4 bytes, rows top to bottom. */
export interface RgbaImage {
    width: number;
    height: number;
    pixels: Uint8Array;
}

/** Encodes an RGBA image as a PNG: no filtering (the images are tiny), deflate at level 9, so the bytes are stable. */
export function encodePng(image: RgbaImage): Buffer {
    const { width, height, pixels } = image;
    const header = Buffer.alloc(13);
    header.writeUInt32BE(width, 0);
    header.writeUInt32BE(height, 4);
    header[8] = 8; // bit depth
    header[9] = colourTypeRgba;
    // compression, filter method and interlace stay 0: deflate, adaptive filtering, not interlaced
    const stride = width * 4;
    const raw = Buffer.alloc((stride + 1) * height);
    for (let y = 0; y < height; y++) {
        raw[y * (stride + 1)] = 0; // filter type None
        raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
    }
    return Buffer.concat([
        pngSignature,
        chunk('IHDR', header),
        chunk('IDAT', deflateSync(raw, { level: 9 })),
        chunk('IEND', new Uint8Array(0)),
    ]);
}

export interface PngHeader {
    width: number;
    height: number;
    bitDepth: number;
    /** 0 grey, 2 RGB, 3 palette, 4 grey and alpha, 6 RGBA. */
    colourType: number;
    interlace: number;
}

/** The IHDR of a PNG: what the Teams checks need (size, whether it can hold transparency), without decoding. */
export function readPngHeader(png: Uint8Array): PngHeader {
    const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
    if (bytes.length < 33 || !bytes.subarray(0, 8).equals(pngSignature)) {
        throw new Error('not a PNG file (no PNG signature)');
    }
    if (bytes.toString('latin1', 12, 16) !== 'IHDR') {
        throw new Error('not a PNG file (the first chunk is not IHDR)');
    }
    return {
        width: bytes.readUInt32BE(16),
        height: bytes.readUInt32BE(20),
        bitDepth: bytes[24] ?? 0,
        colourType: bytes[25] ?? 0,
        interlace: bytes[28] ?? 0,
    };
}

function paeth(a: number, b: number, c: number): number {
    const p = a + b - c;
    const pa = Math.abs(p - a);
    const pb = Math.abs(p - b);
    const pc = Math.abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Decodes an 8-bit, non-interlaced RGBA PNG (what encodePng writes, and what an outline icon has to be), with any of
 * the five row filters, so an icon run through an optimiser still reads. Other formats are refused, naming why.
 */
export function decodePng(png: Uint8Array): RgbaImage {
    const header = readPngHeader(png);
    if (header.colourType !== colourTypeRgba || header.bitDepth !== 8 || header.interlace !== 0) {
        throw new Error(
            `expected an 8-bit RGBA, non-interlaced PNG; got colour type ${header.colourType}, bit depth ` +
                `${header.bitDepth}, interlace ${header.interlace}`,
        );
    }
    const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
    const idat: Buffer[] = [];
    for (let at = 8; at + 12 <= bytes.length;) {
        const length = bytes.readUInt32BE(at);
        const type = bytes.toString('latin1', at + 4, at + 8);
        if (type === 'IDAT') {
            idat.push(bytes.subarray(at + 8, at + 8 + length));
        }
        if (type === 'IEND') {
            break;
        }
        at += 12 + length;
    }
    const raw = inflateSync(Buffer.concat(idat));
    const { width, height } = header;
    const stride = width * 4;
    if (raw.length !== (stride + 1) * height) {
        throw new Error(`PNG image data is ${raw.length} bytes, expected ${(stride + 1) * height}`);
    }
    const pixels = new Uint8Array(stride * height);
    for (let y = 0; y < height; y++) {
        const filter = raw[y * (stride + 1)];
        const row = y * stride;
        for (let x = 0; x < stride; x++) {
            const value = raw[y * (stride + 1) + 1 + x] ?? 0;
            const left = x >= 4 ? (pixels[row + x - 4] ?? 0) : 0;
            const up = y > 0 ? (pixels[row - stride + x] ?? 0) : 0;
            const upLeft = x >= 4 && y > 0 ? (pixels[row - stride + x - 4] ?? 0) : 0;
            const predicted =
                filter === 0
                    ? 0
                    : filter === 1
                      ? left
                      : filter === 2
                        ? up
                        : filter === 3
                          ? (left + up) >> 1
                          : filter === 4
                            ? paeth(left, up, upLeft)
                            : Number.NaN;
            if (Number.isNaN(predicted)) {
                throw new Error(`PNG row ${y} has an unknown filter type ${filter}`);
            }
            pixels[row + x] = (value + predicted) & 0xff;
        }
    }
    return { width, height, pixels };
}

// ---- The glyph ----

/**
 * The glyph lives in a square from -1 to 1 on both axes, y pointing down. `inset` shrinks the shape by that much on
 * every side (roughly: exact on the straight edges), which turns the filled shield into a stroke for the outline icon.
 */
const shield = { top: -0.78, shoulder: 0.22, bottom: 0.94, halfWidth: 0.68, corner: 0.16 };

function insideShield(u: number, v: number, inset = 0): boolean {
    const top = shield.top + inset;
    // The point is sharp: its tip moves up by more than the inset, or the stroke would thin out towards it.
    const bottom = shield.bottom - inset * 1.9;
    const halfWidth = shield.halfWidth - inset;
    const corner = Math.max(shield.corner - inset, 0.02);
    const x = Math.abs(u);
    if (v < top || v > bottom) {
        return false;
    }
    if (v <= shield.shoulder) {
        // Straight sides with rounded top corners.
        if (x > halfWidth) {
            return false;
        }
        if (v < top + corner && x > halfWidth - corner) {
            return (x - (halfWidth - corner)) ** 2 + (v - (top + corner)) ** 2 <= corner * corner;
        }
        return true;
    }
    // Below the shoulder the sides curve in to the point: tangent to the straight sides at the shoulder.
    const t = (v - shield.shoulder) / (bottom - shield.shoulder);
    return x <= halfWidth * (1 - t * t);
}

const checkMark: readonly (readonly [number, number])[] = [
    [-0.34, 0.0],
    [-0.09, 0.25],
    [0.36, -0.26],
];

// Squared distances throughout: Math.hypot is slow, and drawing the icons takes some 700,000 of these.
function distanceToSegmentSquared(
    u: number,
    v: number,
    a: readonly [number, number],
    b: readonly [number, number],
): number {
    const [ax, ay] = a;
    const [bx, by] = b;
    const dx = bx - ax;
    const dy = by - ay;
    const t = Math.max(0, Math.min(1, ((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy)));
    return (u - (ax + t * dx)) ** 2 + (v - (ay + t * dy)) ** 2;
}

function onCheckMark(u: number, v: number, halfWidth: number): boolean {
    for (let i = 0; i + 1 < checkMark.length; i++) {
        const a = checkMark[i];
        const b = checkMark[i + 1];
        if (a && b && distanceToSegmentSquared(u, v, a, b) <= halfWidth * halfWidth) {
            return true;
        }
    }
    return false;
}

type Rgb = readonly [number, number, number];

/**
 * Renders with samples × samples points a pixel, so edges are anti-aliased: `paint` answers the colour at a point of
 * the glyph square, or undefined where it is transparent. `scale` is the glyph square's half-size in pixels.
 */
function render(
    size: number,
    scale: number,
    samples: number,
    paint: (u: number, v: number) => Rgb | undefined,
): RgbaImage {
    const pixels = new Uint8Array(size * size * 4);
    const centreY = (shield.top + shield.bottom) / 2;
    for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
            let r = 0;
            let g = 0;
            let b = 0;
            let covered = 0;
            for (let sy = 0; sy < samples; sy++) {
                for (let sx = 0; sx < samples; sx++) {
                    const u = (x + (sx + 0.5) / samples - size / 2) / scale;
                    const v = (y + (sy + 0.5) / samples - size / 2) / scale + centreY;
                    const colour = paint(u, v);
                    if (colour) {
                        r += colour[0];
                        g += colour[1];
                        b += colour[2];
                        covered++;
                    }
                }
            }
            const at = (y * size + x) * 4;
            if (covered > 0) {
                pixels[at] = Math.round(r / covered);
                pixels[at + 1] = Math.round(g / covered);
                pixels[at + 2] = Math.round(b / covered);
                pixels[at + 3] = Math.round((255 * covered) / (samples * samples));
            }
        }
    }
    return { width: size, height: size, pixels };
}

function hexToRgb(hex: string): Rgb {
    const n = Number.parseInt(hex.slice(1), 16);
    return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

const white: Rgb = [255, 255, 255];

/** 192×192: a white shield with an accent-coloured check mark, on the accent colour, opaque everywhere. */
export function drawColorIcon(): RgbaImage {
    const accent = hexToRgb(accentColor);
    // The glyph fills about 120 px of the 192, inside the safe area Teams keeps clear of its own rounding and badges.
    // 4×4 samples are plenty at this size, and keep the drawing (which the tests repeat) fast.
    return render(colorIconSize, 66, 4, (u, v) => (insideShield(u, v) && !onCheckMark(u, v, 0.1) ? white : accent));
}

/** 32×32: the shield's outline and the check mark in white, everything else fully transparent. */
export function drawOutlineIcon(): RgbaImage {
    // Nearly the whole square: Teams shows outline icons at 20–32 px, where every pixel counts.
    return render(outlineIconSize, 16.5, 8, (u, v) =>
        (insideShield(u, v) && !insideShield(u, v, 0.15)) || onCheckMark(u, v, 0.085) ? white : undefined,
    );
}

function main(): void {
    const dir = path.resolve(__dirname, '..', 'teams-app');
    const color = path.join(dir, 'color.png');
    const outline = path.join(dir, 'outline.png');
    writeFileSync(color, encodePng(drawColorIcon()));
    writeFileSync(outline, encodePng(drawOutlineIcon()));
    console.log(`Wrote ${path.relative(process.cwd(), color)} and ${path.relative(process.cwd(), outline)}`);
}

if (require.main === module) {
    main();
}
