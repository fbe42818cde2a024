import type { TableClient } from '@azure/data-tables';
import { getConfig } from '../config';
import { createCredential, getDeps } from '../runtime';
import { BlobAuditAnchors } from '../storage/auditAnchor';
import { indexTableName, TableRequestIndex } from '../storage/requestIndex';
import { lazy, openTable } from '../storage/tables';
import type { DashboardDeps } from './dashboard';

/**
 * The dashboard's dependencies: the workflow's own (the same store, audit log and cached Graph directory), plus the
 * request index and a count of the audit trail's bypasses. Built once per process, on the first dashboard request.
 */
let deps: DashboardDeps | undefined;
let builtOn: unknown;

export function getDashboardDeps(): DashboardDeps {
    const workflow = getDeps();
    // Rebuilt when the workflow's were (tests and the demo reset them between runs with other settings).
    if (deps && builtOn === workflow) {
        return deps;
    }
    builtOn = workflow;
    const config = getConfig();
    const credential = createCredential(config);
    const requestsTable = lazy(() => openTable(config.storage, config.REQUESTS_TABLE, () => credential));
    const indexTable = lazy(() => openTable(config.storage, indexTableName(config.REQUESTS_TABLE), () => credential));
    const auditTable = lazy(() => openTable(config.storage, config.AUDIT_TABLE, () => credential));
    deps = {
        settings: {
            tenantId: config.AZURE_TENANT_ID,
            approverGroupIds: config.APPROVER_GROUP_IDS,
            readerGroupIds: config.DASHBOARD_READER_GROUP_IDS,
            portalUrl: config.PORTAL_URL,
            publicBaseUrl: config.PUBLIC_BASE_URL,
        },
        directory: workflow.directory,
        requests: workflow.requests,
        audit: workflow.audit,
        anchors: new BlobAuditAnchors(config.storage, config.AUDIT_ANCHOR_CONTAINER, () => credential),
        index: new TableRequestIndex(indexTable, requestsTable),
        bypassesSince: (since) => countAuditAction(auditTable, 'bypassed', since),
        now: () => workflow.now(),
    };
    return deps;
}

/**
 * Audit entries of one action written since a time: a filter on the entry's columns, evaluated by the table service,
 * which sends back only the keys of the matches.
 */
export async function countAuditAction(
    table: () => Promise<TableClient>,
    action: string,
    since: Date,
): Promise<number> {
    const client = await table();
    const filter = `action eq '${action.replace(/'/g, "''")}' and at ge '${since.toISOString()}'`;
    let count = 0;
    for await (const page of client.listEntities({ queryOptions: { filter, select: ['PartitionKey'] } }).byPage({
        maxPageSize: 1000,
    })) {
        count += page.length;
    }
    return count;
}
