import { cleanText } from '../domain/card';

/**
 * Where a command writes. Results go to `out` (stdout), everything else (progress, warnings, errors) to `err`
 * (stderr), so that `--json` output and exports stay parseable when piped.
 */
export interface Output {
    out(line: string): void;
    err(line: string): void;
}

/**
 * The output every command writes through: control characters (C0 but tab and line feed, DEL, C1) become U+FFFD on
 * both streams. Values are cleaned where they are printed (`safe`), but the tables are writable by whoever holds the
 * storage account, and one value printed raw (an id, a status, a sequence number) would let an escape sequence erase
 * the lines above it and print "verified" in a terminal, or write the operator's clipboard (OSC 52). This is the net
 * under every command, present and future. JSON output is unaffected: JSON.stringify escapes control characters.
 */
export function terminalSafe(output: Output): Output {
    const control = (code: number) => (code < 0x20 && code !== 0x09 && code !== 0x0a) || (code >= 0x7f && code <= 0x9f);
    const clean = (line: string) => Array.from(line, (ch) => (control(ch.charCodeAt(0)) ? '\ufffd' : ch)).join('');
    return { out: (line) => output.out(clean(line)), err: (line) => output.err(clean(line)) };
}

/** Exit codes of every command: done, failed (not found, refused, a broken chain), bad usage. */
export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Text that came from outside (a requester's PEC name or message, an approver's response) made safe for a terminal:
 * control characters, and so ANSI escape sequences, could otherwise rewrite what the operator sees.
 */
export function safe(value: unknown, max = 200, options?: { multiline?: boolean }): string {
    if (value === undefined || value === null) {
        return '';
    }
    return cleanText(typeof value === 'string' ? value : JSON.stringify(value), max, options);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (cells: readonly string[]) =>
        cells
            .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
            .join('  ')
            .trimEnd();
    return [line(headers), ...rows.map(line)];
}

/** Label-value lines, the labels padded, continuation lines of a value indented under it. */
export function renderFields(fields: readonly (readonly [string, string])[], indent = ''): string[] {
    const width = Math.max(0, ...fields.map(([label]) => label.length));
    return fields.flatMap(([label, value]) => {
        const [first, ...rest] = value.split('\n');
        return [
            `${indent}${label.padEnd(width)}  ${first ?? ''}`.trimEnd(),
            ...rest.map((l) => `${indent}${' '.repeat(width)}  ${l}`.trimEnd()),
        ];
    });
}

/** A short age: 45s, 12m, 5h, 3d. */
export function formatAge(fromIso: string, now: Date): string {
    const ms = now.getTime() - Date.parse(fromIso);
    if (!Number.isFinite(ms)) {
        return '?';
    }
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) {
        return `${s}s`;
    }
    if (s < 3600) {
        return `${Math.floor(s / 60)}m`;
    }
    if (s < 48 * 3600) {
        return `${Math.floor(s / 3600)}h`;
    }
    return `${Math.floor(s / 86400)}d`;
}

/** `2026-11-21 10:02:13Z`: a timestamp to the second, readable and still unambiguous. */
export function formatTime(iso: string | undefined): string {
    if (!iso) {
        return '';
    }
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? safe(iso, 40) : `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

const units: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * A point in time from the command line: a duration back from now (`30m`, `12h`, `7d`, `2w`) or a date
 * (`2026-11-01`, `2026-11-01T08:00:00Z`; a date without a zone is UTC). Undefined when it is neither.
 */
export function parseSince(text: string, now: Date): Date | undefined {
    const duration = /^(\d{1,6})([mhdw])$/.exec(text.trim());
    if (duration) {
        return new Date(now.getTime() - Number(duration[1]) * (units[duration[2] ?? 'd'] ?? 0));
    }
    const iso = text.trim();
    if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(iso)) {
        return undefined;
    }
    // Date-only strings parse as UTC already; a date-time without a zone would be local time, so make it UTC.
    const withZone = iso.length > 10 && !/(Z|[+-]\d{2}:?\d{2})$/.test(iso) ? `${iso.replace(' ', 'T')}Z` : iso;
    const date = new Date(withZone.replace(' ', 'T'));
    return Number.isNaN(date.getTime()) ? undefined : date;
}
