import { randomBytes } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import type { AuditInput } from '../../src/domain/audit';
import { openRequest, transition, type ApprovalRequest } from '../../src/domain/request';
import type { OpsStores } from '../../src/ops/connection';
import type { Output } from '../../src/ops/output';
import { TableAuditLog } from '../../src/storage/auditLog';
import { AnchoredAuditLog, BlobAuditAnchors } from '../../src/storage/auditAnchor';
import { TableRequestStore } from '../../src/storage/requestStore';
import { azuriteConnectionString, azuriteTable, noCredential } from '../storage/azuriteTable';

/**
 * The ops commands' tests run against the real Azurite (started by the jest global setup), each file on tables of its
 * own, with requests and trails written through the production store and audit log.
 */

export const ours = '0b1c2d3e-aaaa-4bbb-8ccc-000000000001';
export const foreignSub = 'f0f0f0f0-dead-4bee-8f00-00000000f0f0';
export const ourTenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const foreignTenant = '9a1b2c3d-0000-4000-8000-00000000beef';

export interface MemoryOutput extends Output {
    stdout: string[];
    stderr: string[];
    /** Everything written to stdout, one string. */
    text(): string;
}

export function memoryOutput(): MemoryOutput {
    const stdout: string[] = [];
    const stderr: string[] = [];
    return {
        stdout,
        stderr,
        out: (line) => stdout.push(line),
        err: (line) => stderr.push(line),
        text: () => stdout.join('\n'),
    };
}

export interface OpsTables {
    requestsTable: string;
    auditTable: string;
    requests: TableRequestStore;
    audit: TableAuditLog;
    /** The anchor container of this file's trails, on Azurite's blob service. */
    anchorContainer: string;
    anchors: BlobAuditAnchors;
    stores: OpsStores;
    auditClient(): Promise<TableClient>;
    requestsClient(): Promise<TableClient>;
}

/** A fresh pair of tables on Azurite, with the production store and audit log over them. */
export function opsTables(): OpsTables {
    const req = azuriteTable('opsreq');
    const aud = azuriteTable('opsaud');
    const requests = new TableRequestStore(req.table);
    const audit = new TableAuditLog(aud.table);
    const anchorContainer = `opsanc${randomBytes(6).toString('hex')}`;
    const anchors = new BlobAuditAnchors(
        { connectionString: azuriteConnectionString() },
        anchorContainer,
        noCredential,
    );
    return {
        requestsTable: req.name,
        auditTable: aud.name,
        requests,
        audit,
        anchorContainer,
        anchors,
        stores: { requests, audit, anchors },
        auditClient: aud.table,
        requestsClient: req.table,
    };
}

export function newId(): string {
    return randomBytes(16).toString('base64url');
}

export interface SeedOptions {
    /** When the request opened; every later step happens one minute after the one before. */
    at?: Date;
    status?: 'pending' | 'decided' | 'applied' | 'superseded' | 'failed' | 'expired';
    action?: 'approve' | 'reject';
    peSubscription?: string;
    requesterTenant?: string | null;
    message?: string;
    serverName?: string;
    /** Whether the request has a posted bot card. */
    card?: boolean;
}

/**
 * A request written through the store, moved to the wanted status by the domain's own transitions, with an audit
 * trail of one entry per step, as the workflow would leave it.
 */
export async function seedRequest(t: OpsTables, options: SeedOptions = {}): Promise<ApprovalRequest> {
    const start = options.at ?? new Date();
    let step = 0;
    const next = () => new Date(start.getTime() + ++step * 60_000);
    const id = newId();
    const server = options.serverName ?? `pg-${randomBytes(3).toString('hex')}`;
    const serverId = `/subscriptions/${ours}/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/${server}`;
    const pecName = `pe-app.${randomBytes(4).toString('hex')}`;
    const peSub = options.peSubscription ?? ours;
    const tenant = options.requesterTenant === undefined ? ourTenant : options.requesterTenant;
    let request = openRequest({
        id,
        pecId: `${serverId}/privateEndpointConnections/${pecName}`,
        facts: {
            serverKind: 'postgres-flexible',
            serverId,
            serverLocation: 'westeurope',
            publicNetworkAccess: 'Disabled',
            serverTags: { environment: 'prod' },
            pecName,
            privateEndpointId: `/subscriptions/${peSub}/resourceGroups/rg-app/providers/Microsoft.Network/privateEndpoints/pe-app`,
            privateEndpointSubscriptionId: peSub,
            privateEndpointTrusted: peSub === ours,
            requestMessage: options.message ?? 'Please approve: app tier needs the database',
            approvedPecCount: 1,
            approvedUntrustedPecCount: 0,
        },
        requester: {
            objectId: '0a0a0a0a-1111-4111-8111-000000000abc',
            name: 'Dev Eloper',
            upn: 'dev@contoso.com',
            ...(tenant ? { tenantId: tenant } : {}),
        },
        ...(tenant ? { requesterForeignTenant: tenant !== ourTenant } : {}),
        correlationId: `corr-${id}`,
        now: start,
    });
    const { stored } = await t.requests.createIfNone(request);
    let current = stored;
    // Each entry is written at its step's time, as the workflow would have written it then.
    const trail: (Omit<AuditInput, 'requestId' | 'correlationId'> & { at?: Date })[] = [
        {
            at: start,
            action: 'requested',
            actor: { kind: 'requester', id: request.requester?.objectId, name: 'dev@contoso.com' },
            after: { status: 'pending' },
        },
    ];
    if (options.card !== false) {
        const card = {
            channel: 'bot' as const,
            serviceUrl: 'https://smba.example.net/teams/',
            conversationId: `19:chan@thread.tacv2;messageid=${Date.now()}`,
            activityId: String(Date.now()),
            postedAt: next().toISOString(),
        };
        request = { ...request, card, cardShows: 'pending' };
        current = await t.requests.update(current, request);
        trail.push({ at: new Date(card.postedAt), action: 'card-posted', actor: { kind: 'system' }, after: card });
    }
    const status = options.status ?? 'pending';
    if (status !== 'pending') {
        if (status === 'expired') {
            request = transition(request, { type: 'expire', reason: 'no decision within 168 hours' }, next());
            trail.push({
                at: new Date(request.updatedAt),
                action: 'expired',
                actor: { kind: 'system' },
                before: { status: 'pending' },
                after: { status },
            });
        } else if (status === 'superseded') {
            request = transition(request, { type: 'supersede', reason: 'the connection was removed' }, next());
            trail.push({
                at: new Date(request.updatedAt),
                action: 'superseded',
                actor: { kind: 'system' },
                before: { status: 'pending' },
                after: { status },
            });
        } else {
            const action = options.action ?? 'approve';
            const decidedAt = next();
            request = transition(
                request,
                {
                    type: 'decide',
                    decision: {
                        action,
                        by: { objectId: 'a11ce000-0000-4000-8000-00000000a11c', name: 'Alice Approver' },
                        text: action === 'approve' ? 'ok for CHG-1042' : 'not ours',
                        at: decidedAt.toISOString(),
                    },
                },
                decidedAt,
            );
            trail.push({
                at: decidedAt,
                action: 'decided',
                actor: { kind: 'approver', id: 'a11ce000-0000-4000-8000-00000000a11c', name: 'Alice Approver' },
                before: { status: 'pending' },
                after: { status: 'decided', action },
                text: request.decision?.text,
            });
            if (status === 'applied' || status === 'failed') {
                request =
                    status === 'applied'
                        ? transition(request, { type: 'apply' }, next())
                        : transition(request, { type: 'fail', reason: 'ARM said 403' }, next());
                trail.push({
                    at: new Date(request.updatedAt),
                    action: status,
                    actor: { kind: 'system' },
                    before: { status: 'decided' },
                    after: { status },
                });
            }
        }
        request = { ...request, cardShows: request.status };
        current = await t.requests.update(current, request);
    }
    for (const { at, ...input } of trail) {
        // Anchored as the app anchors them; a failed anchor fails the seeding, so a test never starts unanchored.
        const log = new AnchoredAuditLog(
            new TableAuditLog(t.auditClient, () => at ?? new Date()),
            t.anchors,
            (_, e) => {
                throw e;
            },
        );
        await log.append({ ...input, requestId: id, correlationId: request.correlationId });
    }
    return current.request;
}

export { auditRowKey } from '../../src/storage/auditLog';
