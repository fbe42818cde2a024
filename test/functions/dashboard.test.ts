import { HttpRequest } from '@azure/functions';
import { dashboard } from '../../functions/dashboard';
import { CLIENT_PRINCIPAL_HEADER, encodeClientPrincipal } from '../../src/web/easyAuth';
import { BlobAuditAnchors } from '../../src/storage/auditAnchor';
import { auditRowKey, hashAuditEntry, verifyChain } from '../../src/storage/auditLog';
import { lazyTable } from '../storage/azuriteTable';
import {
    click,
    drainApplyQueue,
    ids,
    openCard,
    people,
    startHarness,
    testContext,
    type Harness,
    type TestPerson,
} from '../harness';

/**
 * /api/dashboard through its registered handler, against Azurite and the Graph emulator: who may see it (and that
 * nobody else sees any of it), what it shows, and that it changes nothing.
 */

const readers = '5ec0a1d1-0000-4000-8000-00000000cafe';
const auditor = {
    objectId: 'a0d17000-0000-4000-8000-0000000a0d17',
    name: 'Ann Auditor',
    upn: 'ann@contoso.com',
};

interface Call {
    query?: string;
    who?: TestPerson | typeof auditor | null;
    tenantId?: string;
    method?: string;
}

async function get(call: Call = {}) {
    const who = call.who === undefined ? people.alice : call.who;
    const headers: Record<string, string> = {};
    if (who) {
        headers[CLIENT_PRINCIPAL_HEADER] = encodeClientPrincipal({ ...who, tenantId: call.tenantId ?? ids.tenant });
    }
    const request = new HttpRequest({
        url: `https://pec-gate.example.net/api/dashboard${call.query ? `?${call.query}` : ''}`,
        method: call.method ?? 'GET',
        headers,
    });
    const response = await dashboard(request, testContext('dashboard'));
    return {
        status: response.status ?? 200,
        body: String(response.body ?? ''),
        headers: Object.fromEntries(Object.entries(response.headers ?? {}).map(([k, v]) => [k, String(v)])),
    };
}

describe('dashboard', () => {
    let h: Harness;
    const requestIds: string[] = [];
    const serverNames: string[] = [];

    beforeAll(async () => {
        h = await startHarness({ settings: { WEBSITE_AUTH_ENABLED: 'true', DASHBOARD_READER_GROUP_IDS: readers } });
        h.graph.addUser({ id: auditor.objectId, displayName: auditor.name, userPrincipalName: auditor.upn });
        h.graph.addGroup(readers, { members: [auditor.objectId] });
        const a = await openCard(h, 'postgres-flexible', {
            peSubscriptionId: ids.foreign,
            message: '<script>alert(1)</script> =HYPERLINK("http://evil.example")',
        });
        const b = await openCard(h, 'mysql-flexible');
        const c = await openCard(h, 'postgres-single');
        await click(h, b.request, { verb: 'approve', text: 'fine' });
        await click(h, c.request, { verb: 'reject', text: 'no' });
        await drainApplyQueue(h);
        for (const opened of [a, b, c]) {
            requestIds.push(opened.request.id);
            serverNames.push(opened.seeded.serverId.split('/').pop()!);
        }
    }, 60_000);

    afterAll(async () => {
        await h?.close();
    });

    it('shows an approver the summary, charts and every request, under the strict CSP', async () => {
        const { status, body, headers } = await get();
        expect(status).toBe(200);
        expect(headers['Content-Security-Policy']).toMatch(/default-src 'none'; style-src 'sha256-[^']+'/);
        expect(headers['Content-Security-Policy']).not.toMatch(/script-src|unsafe/);
        expect(body).not.toMatch(/<script/i);
        expect(body).toContain('<svg');
        for (const id of requestIds) {
            expect(body).toContain(`request=${id}`);
        }
        expect(body).toMatch(/id="tile-pending"><div class="label">Pending now<\/div><div class="value">1</);
        expect(body).toMatch(/id="tile-decided7"><div class="label">Decided, 7 days<\/div><div class="value">2</);
        expect(body).toContain('1 approved, 1 rejected, 0 automatic');
    });

    it('shows a member of the reader group, who is no approver', async () => {
        const { status, body } = await get({ who: auditor });
        expect(status).toBe(200);
        expect(body).toContain(`request=${requestIds[0]}`);
    });

    it.each([
        ['someone in no group', { who: people.mallory }, 403],
        ['an approver of another tenant', { tenantId: ids.foreignTenant }, 403],
        ['nobody signed in', { who: null }, 401],
    ] as const)('shows %s nothing', async (_name, call, expected) => {
        for (const query of ['', `request=${requestIds[0]}`, 'format=csv', 'format=jsonl', 'status=pending']) {
            const { status, body, headers } = await get({ ...call, query });
            expect(status).toBe(expected);
            expect(headers['Content-Disposition']).toBeUndefined();
            for (const secret of [...requestIds, ...serverNames, 'pe-postgres']) {
                expect(body).not.toContain(secret);
            }
        }
    });

    it('refuses everything when App Service Authentication is off, whatever header is sent', async () => {
        const previous = process.env.WEBSITE_AUTH_ENABLED;
        process.env.WEBSITE_AUTH_ENABLED = 'false';
        try {
            const { status, body } = await get();
            expect(status).toBe(401);
            expect(body).not.toContain(requestIds[0]);
        } finally {
            process.env.WEBSITE_AUTH_ENABLED = previous;
        }
    });

    it('fails closed when Graph cannot answer the group check', async () => {
        // Bob is an approver, but his membership was never asked, so nothing is cached for him.
        h.graph.faults.add({ kind: 'error', status: 503 }, { times: 20, pathIncludes: '/checkMember' });
        try {
            const { status, body } = await get({ who: people.bob });
            expect(status).toBe(503);
            expect(body).toContain('could not be checked');
            expect(body).not.toContain(requestIds[0]);
        } finally {
            h.graph.faults.clear();
        }
    });

    it('answers only GET, and changes nothing', async () => {
        const before = await h.deps.requests.get(requestIds[0]!);
        const trail = (await h.deps.audit.list(requestIds[0]!)).length;
        for (const method of ['POST', 'PUT', 'DELETE']) {
            const { status, body } = await get({ method, query: `request=${requestIds[0]}` });
            expect(status).toBe(405);
            expect(body).not.toContain(requestIds[0]);
        }
        await get({ query: `request=${requestIds[0]}` });
        await get({ query: 'format=csv' });
        expect((await h.deps.requests.get(requestIds[0]!))?.etag).toBe(before?.etag);
        expect(await h.deps.audit.list(requestIds[0]!)).toHaveLength(trail);
    });

    it('filters the list', async () => {
        const listed = (body: string) => requestIds.filter((id) => body.includes(`request=${id}`));
        const table = (body: string) => body.slice(body.indexOf('id="list-heading"'));
        expect(listed(table((await get({ query: 'status=applied' })).body))).toEqual(requestIds.slice(1));
        expect(listed(table((await get({ query: 'origin=foreign' })).body))).toEqual([requestIds[0]]);
        expect(listed(table((await get({ query: 'kind=mysql-flexible' })).body))).toEqual([requestIds[1]]);
        expect(listed(table((await get({ query: `server=${serverNames[2]}` })).body))).toEqual([requestIds[2]]);
        expect(listed(table((await get({ query: 'approver=alice' })).body))).toEqual(requestIds.slice(1));
        expect(listed(table((await get({ query: 'requester=dev%40contoso' })).body))).toHaveLength(3);
        expect(listed(table((await get({ query: 'from=2000-01-01&to=2000-01-31' })).body))).toEqual([]);
        // The last day there is: a bound past it would be the year 10000, which sorts before every real date.
        expect(listed(table((await get({ query: 'from=2000-01-01&to=9999-12-31' })).body))).toHaveLength(3);
    });

    it('refuses a query it does not understand, with a clear message and no data', async () => {
        for (const query of [
            'status=nope',
            'after=garbage',
            'from=2026-13-45',
            'sort=id',
            'status=pending&status=failed',
        ]) {
            const { status, body } = await get({ query });
            expect(status).toBe(400);
            expect(body).not.toContain(requestIds[0]);
        }
    });

    it('shows one request: its facts, its timeline, its verified chain and its links, every value escaped', async () => {
        const { status, body } = await get({ query: `request=${requestIds[0]}` });
        expect(status).toBe(200);
        expect(body).toContain('Audit trail intact: 2 entries');
        expect(body).toContain('every head anchored in the write-once store still in its place');
        expect(body).toMatch(/<strong>requested<\/strong>[\s\S]*<strong>card-posted<\/strong>/);
        expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
        expect(body).not.toContain('<script>');
        expect(body).toContain('href="https://portal.azure.com/#@');
        expect(body).toContain(`id="decision-page" href="https://pec-gate.example.net/api/requests/${requestIds[0]}"`);
        const decided = await get({ query: `request=${requestIds[1]}` });
        expect(decided.body).not.toContain('id="decision-page"');
        expect(decided.body).toMatch(/<strong>decided<\/strong>[\s\S]*<strong>applied<\/strong>/);
    });

    it('reports a chain that was tampered with', async () => {
        const audit = await lazyTable(h.config.AUDIT_TABLE)();
        const id = requestIds[2]!;
        const row = await audit.getEntity<{ entry: string }>(id, auditRowKey(id, 1));
        const entry = JSON.parse(row.entry) as { detail?: string };
        await audit.updateEntity(
            { partitionKey: id, rowKey: auditRowKey(id, 1), entry: JSON.stringify({ ...entry, detail: 'edited' }) },
            'Merge',
        );
        const { body } = await get({ query: `request=${id}` });
        expect(body).toContain('Audit chain BROKEN');
        expect(body).toMatch(/<strong>edited<\/strong>: entry 1/);
    });

    it('reports a trail rewritten with its hash recomputed, which only its anchors give away', async () => {
        const audit = await lazyTable(h.config.AUDIT_TABLE)();
        const id = requestIds[1]!;
        const trail = await h.deps.audit.list(id);
        const last = trail[trail.length - 1]!;
        expect(await get({ query: `request=${id}` })).toMatchObject({
            body: expect.stringContaining('Audit trail intact'),
        });
        // The last entry: no later entry links to it, so its chain stays intact with the new hash.
        const { hash: _old, ...rest } = last;
        const changed = { ...rest, text: 'approved by the CEO' };
        await audit.updateEntity(
            {
                partitionKey: id,
                rowKey: auditRowKey(id, last.seq),
                entry: JSON.stringify({ ...changed, hash: hashAuditEntry(changed) }),
            },
            'Merge',
        );
        expect(verifyChain(await h.deps.audit.list(id))).toEqual([]);
        const { body } = await get({ query: `request=${id}` });
        expect(body).toContain('Audit chain BROKEN');
        expect(body).toMatch(new RegExp(`<strong>anchor-mismatch</strong>: entry ${last.seq} `));
        expect(body).not.toContain('intact');
    });

    it('says what it could not compare when the anchors cannot be read, and still shows the request', async () => {
        const failing = jest
            .spyOn(BlobAuditAnchors.prototype, 'heads')
            .mockRejectedValue(new Error('Blob service unavailable (503)'));
        try {
            const { status, body } = await get({ query: `request=${requestIds[0]}` });
            expect(status).toBe(200);
            expect(body).toContain('Hash chain intact: 2 entries');
            expect(body).toContain('The write-once anchors could not be read (Blob service unavailable (503))');
            expect(body).not.toContain('Audit trail intact');
        } finally {
            failing.mockRestore();
        }
    });

    it('exports the filtered list as CSV and as JSON lines, as downloads', async () => {
        const csv = await get({ query: 'status=applied&format=csv' });
        expect(csv.status).toBe(200);
        expect(csv.headers['Content-Type']).toBe('text/csv; charset=utf-8');
        expect(csv.headers['Content-Disposition']).toMatch(/^attachment; filename="pec-requests-\d{8}-\d{4}\.csv"$/);
        const lines = csv.body
            .replace(/^\uFEFF/, '')
            .trim()
            .split('\r\n');
        expect(lines[0]).toMatch(/^id,status,/);
        expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(
            requestIds
                .slice(1)
                .reverse()
                // A base64url id may start with '-' (one in 64), and the CSV guard prefixes such a cell with "'".
                .map((id) => `"${id.startsWith('-') ? "'" : ''}${id}"`),
        );
        const jsonl = await get({ query: 'format=jsonl&origin=foreign' });
        expect(jsonl.headers['Content-Disposition']).toMatch(/\.jsonl"$/);
        const rows = jsonl.body
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { id: string; origin: string });
        expect(rows).toEqual([expect.objectContaining({ id: requestIds[0], origin: 'foreign' })]);
    });
});
