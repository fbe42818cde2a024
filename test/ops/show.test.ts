import type { AuditEntry } from '../../src/domain/audit';
import type { ApprovalRequest } from '../../src/domain/request';
import { auditTrailCommand, showCommand } from '../../src/ops/show';
import { memoryOutput, newId, opsTables, auditRowKey, seedRequest } from './helpers';

/** `pec show ID` and `pec audit ID` against Azurite: the request's fields, its trail, and the chain's verdict. */

describe('pec show and pec audit ID', () => {
    const t = opsTables();
    const now = new Date();

    it('prints the request, its audit trail (time, action, actor, text, before → after) and that the chain verifies', async () => {
        const request = await seedRequest(t, { status: 'applied', at: new Date(now.getTime() - 3_600_000) });
        const output = memoryOutput();
        expect(await showCommand(t.stores, request.id, { json: false, now }, output)).toBe(0);
        const text = output.text();
        expect(text).toMatch(new RegExp(`^Request +${request.id}$`, 'm'));
        expect(text).toMatch(/^Status +applied \(approved\)$/m);
        expect(text).toMatch(/^Server +pg-\w+ \(PostgreSQL flexible server, westeurope\)$/m);
        expect(text).toMatch(/^Requester +Dev Eloper <dev@contoso\.com>, object id .*, tenant .* \(ours\)$/m);
        expect(text).toMatch(/^Decision +approve by Alice Approver at .*\n +"ok for CHG-1042"$/m);
        expect(text).toContain('Audit trail: chain verifies (4 entries)');
        // One block per entry, in order: time, action, actor; then text and change.
        const heads = text.split('\n').filter((l) => /^ {2}#\d/.test(l));
        expect(heads).toEqual([
            expect.stringMatching(/^ {2}#1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ +requested +requester dev@contoso\.com \(/),
            expect.stringMatching(/#2 .* card-posted +system$/),
            expect.stringMatching(/#3 .* decided +approver Alice Approver \(a11ce000-/),
            expect.stringMatching(/#4 .* applied +system$/),
        ]);
        expect(text).toMatch(
            /decided .*\n +text +ok for CHG-1042\n +change +status: pending → decided; action: approve/,
        );
        expect(text).toMatch(/applied +system\n +change +status: decided → applied/);
    });

    it('writes the request, without its link secrets, and the trail as JSON', async () => {
        const request = await seedRequest(t);
        const stored = await t.requests.get(request.id);
        await t.requests.update(stored!, {
            ...request,
            link: { tokenHash: 'h'.repeat(64), pageKey: 'secret-page-key', expiresAt: now.toISOString() },
        });
        const output = memoryOutput();
        expect(await showCommand(t.stores, request.id, { json: true, now }, output)).toBe(0);
        const json = JSON.parse(output.text()) as {
            request: ApprovalRequest;
            audit: { ok: boolean; trail: AuditEntry[] };
        };
        expect(json.request.id).toBe(request.id);
        expect(json.request.link).toEqual({ expiresAt: now.toISOString() });
        expect(output.text()).not.toContain('secret-page-key');
        expect(json.audit.ok).toBe(true);
        expect(json.audit.trail.map((e) => e.action)).toEqual(['requested', 'card-posted']);
    });

    it('never lets a requester-controlled text drive the terminal (escape sequences are stripped)', async () => {
        const request = await seedRequest(t, { message: 'hi\u001b[2J\u001b]8;;https://evil.example\u0007there\u202e' });
        const output = memoryOutput();
        await showCommand(t.stores, request.id, { json: false, now }, output);
        const text = output.text();
        expect(text).toMatch(/^Message +hi\[2J\]8;;https:\/\/evil\.examplethere$/m);
        // eslint-disable-next-line no-control-regex -- the point: no control character reaches the terminal
        expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
    });

    it('reports a broken chain, and exits 1', async () => {
        const request = await seedRequest(t, { status: 'decided' });
        const client = await t.auditClient();
        const row = await client.getEntity<{ entry: string }>(request.id, auditRowKey(request.id, 3));
        const edited = { ...(JSON.parse(row.entry) as AuditEntry), text: 'approved by the CEO' };
        await client.updateEntity(
            { partitionKey: request.id, rowKey: auditRowKey(request.id, 3), entry: JSON.stringify(edited) },
            'Merge',
        );

        const output = memoryOutput();
        expect(await showCommand(t.stores, request.id, { json: false, now }, output)).toBe(1);
        expect(output.text()).toContain('Audit trail: chain BROKEN (1 finding)');
        expect(output.text()).toContain('! edited: entry 3 (decided) was edited: its content does not match its hash');
    });

    it('refuses an unknown request (1) and something that is not a request id (2)', async () => {
        const unknown = memoryOutput();
        const id = newId();
        expect(await showCommand(t.stores, id, { json: false, now }, unknown)).toBe(1);
        expect(unknown.stderr).toEqual([`No request ${id}, and no audit entries for it`]);
        expect(unknown.stdout).toEqual([]);

        const bad = memoryOutput();
        expect(await showCommand(t.stores, "x' or PartitionKey ne '", { json: false, now }, bad)).toBe(2);
        expect(bad.stderr.join('\n')).toMatch(/is not a request id/);
    });

    it('pec audit ID prints only the trail; --json gives the entries and the verdict', async () => {
        const request = await seedRequest(t, { status: 'superseded' });
        const output = memoryOutput();
        expect(await auditTrailCommand(t.stores, request.id, { json: false }, output)).toBe(0);
        expect(output.stdout[0]).toBe('Audit trail: chain verifies (3 entries)');
        expect(output.text()).not.toContain('Requester');
        expect(output.text()).toMatch(/#3 .* superseded +system\n +change +status: pending → superseded/);

        const json = memoryOutput();
        expect(await auditTrailCommand(t.stores, request.id, { json: true }, json)).toBe(0);
        const parsed = JSON.parse(json.text()) as { ok: boolean; trail: AuditEntry[]; requestId: string };
        expect(parsed).toMatchObject({ ok: true, requestId: request.id });
        expect(parsed.trail.map((e) => e.seq)).toEqual([1, 2, 3]);

        expect(await auditTrailCommand(t.stores, newId(), { json: false }, memoryOutput())).toBe(1);
    });
});
