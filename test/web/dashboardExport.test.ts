import { csvCell, exportCsv, exportJsonLines } from '../../src/web/dashboardExport';
import type { IndexedRequest } from '../../src/storage/requestIndex';
import { percentile } from '../../src/web/dashboard';

const row: IndexedRequest = {
    id: 'Dq7vN8kLm2PzR7tYw9bC4A',
    status: 'pending',
    kind: 'postgres-flexible',
    server: 'psql-prod',
    pecName: '=HYPERLINK("http://evil.example","click")',
    origin: 'foreign',
    requester: '+1-555, "Mallory"',
    approver: '@SUM(A1:A9)',
    createdAt: '2026-11-21T10:00:00.000Z',
    updatedAt: '2026-11-21T10:00:00.000Z',
};

describe('dashboard export', () => {
    it.each(['=1+1', '+1', '-1', '@cmd', '\t=x', '\r=x', '  =1+1'])('makes the formula cell %j plain text', (value) => {
        expect(csvCell(value).startsWith(`"'`)).toBe(true);
    });

    it('quotes every cell, doubles quotes, and leaves ordinary text alone', () => {
        expect(csvCell('a,b "c"\nd')).toBe('"a,b ""c""\nd"');
        expect(csvCell(undefined)).toBe('""');
        const csv = exportCsv([row]);
        expect(csv.startsWith('\uFEFFid,status,action,auto,kind,server,pecName,origin,requester,approver,')).toBe(true);
        const cells = csv.split('\r\n')[1]!;
        expect(cells).toContain(`"'=HYPERLINK(""http://evil.example"",""click"")"`);
        expect(cells).toContain(`"'+1-555, ""Mallory"""`);
        expect(cells).toContain(`"'@SUM(A1:A9)"`);
        expect(cells).not.toMatch(/(^|,)"[=+\-@]/);
    });

    it('writes JSON lines with every column, the values unchanged', () => {
        const [line, ...rest] = exportJsonLines([row]).split('\n');
        expect(rest).toEqual(['']);
        expect(JSON.parse(line!)).toMatchObject({ pecName: row.pecName, action: null, decidedAt: null });
    });
});

describe('percentile', () => {
    it('takes the nearest rank', () => {
        const values = Array.from({ length: 100 }, (_, i) => i + 1);
        expect(percentile(values, 50)).toBe(50);
        expect(percentile(values, 95)).toBe(95);
        expect(percentile([7], 95)).toBe(7);
        expect(percentile([], 50)).toBeUndefined();
    });
});
