import { stripInvisible } from '../domain/card';
import type { IndexedRequest } from '../storage/requestIndex';

/**
 * The dashboard's exports of the filtered list: CSV for a spreadsheet, JSON lines for a SIEM or a script.
 *
 * Requesters choose some of these values (the connection's name, their display name), and a spreadsheet runs a cell
 * that starts with = + - @ (or a tab or carriage return, which some treat the same) as a formula: such a cell gets a
 * leading apostrophe, which the spreadsheet shows as text (OWASP "CSV injection"). Every cell is quoted, so commas,
 * quotes and line breaks stay inside their cell.
 */

export const exportColumns = [
    'id',
    'status',
    'action',
    'auto',
    'kind',
    'server',
    'pecName',
    'origin',
    'requester',
    'approver',
    'createdAt',
    'decidedAt',
    'updatedAt',
] as const satisfies readonly (keyof IndexedRequest)[];

const formulaStart = /^[=+\-@\t\r]/;
/** After spaces, too: some spreadsheets skip leading blanks before they look for a formula. */
const formulaAfterBlanks = /^\s*[=+\-@]/;

export function csvCell(value: string | undefined): string {
    const raw = value ?? '';
    const text = stripInvisible(raw, { multiline: true });
    const safe = formulaStart.test(raw) || formulaAfterBlanks.test(text) ? `'${text}` : text;
    return `"${safe.replace(/"/g, '""')}"`;
}

export function exportCsv(rows: readonly IndexedRequest[]): string {
    const lines = [exportColumns.join(',')];
    for (const row of rows) {
        lines.push(exportColumns.map((c) => csvCell(row[c])).join(','));
    }
    // CRLF, as RFC 4180 has it; a BOM so that Excel reads the file as UTF-8.
    return `\uFEFF${lines.join('\r\n')}\r\n`;
}

export function exportJsonLines(rows: readonly IndexedRequest[]): string {
    return rows
        .map((row) => JSON.stringify(Object.fromEntries(exportColumns.map((c) => [c, row[c] ?? null]))))
        .map((line) => `${line}\n`)
        .join('');
}
