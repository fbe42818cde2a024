import type { AuditAction, AuditEntry, AuditInput } from '../../src/domain/audit';
import { loadConfig } from '../../src/config';
import { parseAuthenticationString, parseConnectionString } from '../../src/observability/connectionString';
import {
    InMemoryTelemetry,
    LazyTelemetry,
    milestoneEvents,
    TrackedAuditLog,
    type TelemetryEvent,
} from '../../src/observability/telemetry';
import { withTrace } from '../../src/observability/trace';
import { randomBytes } from 'node:crypto';
import { TableAuditLog, type AuditLog } from '../../src/storage/auditLog';
import { lazyTable } from '../storage/azuriteTable';

/** The audit port's double: appends in memory, numbering entries as the table does. */
class MemoryAudit implements AuditLog {
    readonly entries: AuditEntry[] = [];
    async append(input: AuditInput): Promise<AuditEntry> {
        const entry = {
            ...input,
            seq: this.entries.length + 1,
            at: '2026-11-21T10:00:00.000Z',
            prevHash: '',
            hash: '',
        };
        this.entries.push(entry);
        return entry;
    }
    async list(requestId: string): Promise<AuditEntry[]> {
        return this.entries.filter((e) => e.requestId === requestId);
    }
}

const allActions: AuditAction[] = [
    'requested',
    'card-posted',
    'card-fallback',
    'card-failed',
    'decided',
    'refused',
    'applied',
    'superseded',
    'failed',
    'expired',
    'policy',
    'approval',
    'reminded',
    'requeued',
    'released',
    'identified',
];

describe('milestone events from the audit log', () => {
    it('tracks exactly requested, decided, applied, superseded, expired and failed, with both ids', async () => {
        const telemetry = new InMemoryTelemetry();
        const audit = new TrackedAuditLog(new MemoryAudit(), telemetry);
        for (const action of allActions) {
            await audit.append({ requestId: 'r1', action, actor: { kind: 'system' }, correlationId: 'c1' });
        }
        expect(telemetry.events.map((e) => e.name)).toEqual([
            'PecRequested',
            'PecDecided',
            'PecApplied',
            'PecSuperseded',
            'PecFailed',
            'PecExpired',
        ]);
        expect(Object.keys(milestoneEvents).sort()).toEqual(
            ['applied', 'decided', 'expired', 'failed', 'requested', 'superseded'].sort(),
        );
        for (const event of telemetry.events) {
            expect(event.properties).toMatchObject({ requestId: 'r1', correlationId: 'c1', actorKind: 'system' });
            expect(event.trace).toMatchObject({ requestId: 'r1', correlationId: 'c1' });
        }
    });

    it('takes the ids from the entry, not from whatever is in scope, and keeps the invocation id', async () => {
        const telemetry = new InMemoryTelemetry();
        const audit = new TrackedAuditLog(new MemoryAudit(), telemetry);
        await withTrace({ requestId: 'other', correlationId: 'other', invocationId: 'inv-1' }, () =>
            audit.append({ requestId: 'r2', action: 'applied', actor: { kind: 'system' }, correlationId: 'c2' }),
        );
        expect(telemetry.events[0]?.trace).toEqual({ requestId: 'r2', correlationId: 'c2', invocationId: 'inv-1' });
    });

    it('carries the entry’s hash and its predecessor’s, a second copy of the chain outside storage', async () => {
        const telemetry = new InMemoryTelemetry();
        const audit = new TrackedAuditLog(
            new TableAuditLog(lazyTable(`tel${randomBytes(6).toString('hex')}`)),
            telemetry,
        );
        const requested = await audit.append(
            { requestId: 'r3', action: 'requested', actor: { kind: 'system' }, correlationId: 'c3' },
            { first: true },
        );
        await audit.append({ requestId: 'r3', action: 'card-posted', actor: { kind: 'system' }, correlationId: 'c3' });
        const decided = await audit.append({
            requestId: 'r3',
            action: 'decided',
            actor: { kind: 'approver', id: 'alice' },
            correlationId: 'c3',
        });
        expect(telemetry.events.map((e) => [e.name, e.properties.auditSeq, e.properties.auditHash])).toEqual([
            ['PecRequested', '1', requested.hash],
            ['PecDecided', '3', decided.hash],
        ]);
        expect(telemetry.events[1]?.properties.auditPrevHash).toBe(decided.prevHash);
        expect(decided.hash).toMatch(/^[0-9a-f]{64}$/);
    });

    it('tracks nothing when the append fails', async () => {
        const telemetry = new InMemoryTelemetry();
        const failing: AuditLog = {
            append: async () => {
                throw new Error('storage down');
            },
            list: async () => [],
        };
        const audit = new TrackedAuditLog(failing, telemetry);
        await expect(
            audit.append({ requestId: 'r', action: 'applied', actor: { kind: 'system' }, correlationId: 'c' }),
        ).rejects.toThrow('storage down');
        expect(telemetry.events).toEqual([]);
    });
});

describe('LazyTelemetry', () => {
    const event: TelemetryEvent = { name: 'PecApplied', time: new Date(0), properties: {}, trace: {} };

    it('loads the sink only when there is something to send', async () => {
        const sink = new InMemoryTelemetry();
        const load = jest.fn(async () => sink);
        const lazy = new LazyTelemetry(load);
        await lazy.flush();
        expect(load).not.toHaveBeenCalled();
        lazy.trackEvent(event);
        await lazy.flush();
        expect(load).toHaveBeenCalledTimes(1);
        expect(sink.events).toEqual([event]);
    });

    it('logs and carries on when the sink cannot load, and tries again next time', async () => {
        const warnings: unknown[] = [];
        const log = {
            info: () => undefined,
            warn: (...a: unknown[]) => warnings.push(a.join(' ')),
            error: () => undefined,
        };
        const sink = new InMemoryTelemetry();
        const load = jest.fn().mockRejectedValueOnce(new Error('no module')).mockResolvedValueOnce(sink);
        const lazy = new LazyTelemetry(load);
        lazy.trackEvent(event);
        await expect(lazy.flush(log)).resolves.toBeUndefined();
        expect(warnings).toEqual(['Telemetry: 1 event(s) not sent: no module']);
        lazy.trackEvent(event);
        await lazy.flush(log);
        expect(sink.events).toHaveLength(1);
    });
});

describe('Application Insights settings', () => {
    it('parses connection strings in any key order and case, and refuses http or a missing key', () => {
        expect(
            parseConnectionString(
                'IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/;instrumentationkey=abc;LiveEndpoint=https://x/',
            ),
        ).toEqual({
            instrumentationKey: 'abc',
            ingestionEndpoint: 'https://westeurope-5.in.applicationinsights.azure.com',
        });
        // Microsoft Learn, "Connection strings in Application Insights": EndpointSuffix=ai.contoso.com gives
        // https://dc.ai.contoso.com; a Location goes in front; an explicit IngestionEndpoint wins.
        expect(parseConnectionString('InstrumentationKey=abc;EndpointSuffix=ai.contoso.com')?.ingestionEndpoint).toBe(
            'https://dc.ai.contoso.com',
        );
        expect(
            parseConnectionString('InstrumentationKey=abc;EndpointSuffix=ai.contoso.com;Location=westus2')
                ?.ingestionEndpoint,
        ).toBe('https://westus2.dc.ai.contoso.com');
        expect(
            parseConnectionString('InstrumentationKey=abc;EndpointSuffix=ai.contoso.com;IngestionEndpoint=https://x/')
                ?.ingestionEndpoint,
        ).toBe('https://x');
        expect(parseConnectionString('InstrumentationKey=abc')?.ingestionEndpoint).toBe(
            'https://dc.services.visualstudio.com',
        );
        expect(parseConnectionString('IngestionEndpoint=https://x/')).toBeUndefined();
        expect(parseConnectionString('InstrumentationKey=abc;IngestionEndpoint=http://x/')).toBeUndefined();
        expect(parseAuthenticationString('Authorization=AAD;ClientId=abc')).toEqual({ aad: true, clientId: 'abc' });
        expect(parseAuthenticationString('Authorization=AAD')).toEqual({ aad: true });
        expect(parseAuthenticationString('ClientId=abc')).toBeUndefined();
    });

    it('stops start-up with the setting named when either is malformed', () => {
        const base = {
            WATCHED_SUBSCRIPTION_IDS: '0b1c2d3e-aaaa-4bbb-8ccc-000000000001',
            AZURE_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
            AZURE_CLIENT_ID: '5e1f0c2a-1111-4222-8333-444455556666',
            APPROVER_GROUP_IDS: 'a9a9a9a9-0000-4000-8000-000000000001',
            PUBLIC_BASE_URL: 'https://pec-gate.example.net',
            TEAMS_CHANNEL_ID: '19:x@thread.tacv2',
            SWEEP_SCHEDULE: '0 */15 * * * *',
            AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        };
        expect(() =>
            loadConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=k' }),
        ).not.toThrow();
        expect(() => loadConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: 'nonsense' })).toThrow(
            /APPLICATIONINSIGHTS_CONNECTION_STRING: expected an Application Insights connection string/,
        );
        expect(() => loadConfig({ ...base, APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=x' })).toThrow(
            /APPLICATIONINSIGHTS_AUTHENTICATION_STRING: expected Authorization=AAD/,
        );
    });
});
