import { classifyResourceEvent, parseResourceEvent, type ClassifyOptions } from '../../src/workflow/resourceEvent';
import { ids } from '../harness';
import writeSample from './fixtures/eventgrid-subscription-write-success.json';
import deleteSample from './fixtures/eventgrid-subscription-delete-success.json';

/**
 * The Event Grid contract, held against Microsoft's own published example events rather than the ones our harness
 * builds: the documented events carry fields our harness never sends (an `evidence` object, `httpRequest`,
 * `dataVersion`, dozens of claims), and the parser must take them as they are.
 */

const options: ClassifyOptions = { watchedSubscriptionIds: [ids.ours], ownClientId: ids.client };

const objectId = '3f1c7a52-9d2e-4b8a-a1c3-5e6f7a8b9c0d';
const tenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47';

function clone<T>(value: T): T {
    return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * The documented write event with only what differs for a PEC filled in: the placeholders by values, and the
 * resource, operation and authorization by those of a PEC on a PostgreSQL flexible server. Every other field stays
 * exactly as published.
 */
type DocumentedEvent = typeof writeSample.event;

function documentedEventOnPec(): DocumentedEvent {
    const event = clone(writeSample.event);
    const pec =
        `/subscriptions/${ids.ours}/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/` +
        'db-01/privateEndpointConnections/pe-app.1a2b3c4d-0000-4000-8000-000000000000';
    const operation = 'Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnections/write';
    event.subject = pec;
    event.topic = `/subscriptions/${ids.ours}`;
    event.data.resourceUri = pec;
    event.data.operationName = operation;
    event.data.resourceProvider = 'Microsoft.DBforPostgreSQL';
    event.data.authorization.scope = pec;
    event.data.authorization.action = operation;
    event.data.subscriptionId = ids.ours;
    event.data.tenantId = tenantId;
    event.data.correlationId = '8a2da39d-ef93-42dd-8ce6-97ac802ecc6d';
    const claims = event.data.claims;
    claims['http://schemas.microsoft.com/identity/claims/objectidentifier'] = objectId;
    claims['http://schemas.microsoft.com/identity/claims/tenantid'] = tenantId;
    claims['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn'] = 'alice@contoso.com';
    claims.name = 'Alice Example';
    claims.appid = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
    claims.ipaddr = '203.0.113.7';
    return event;
}

/** Event Grid's CloudEvents 1.0 schema for the same event: `source` is the topic, `type` the event type. */
function asCloudEvent(event: DocumentedEvent): Record<string, unknown> {
    return {
        specversion: '1.0',
        id: event.id,
        source: event.topic,
        type: event.eventType,
        subject: event.subject,
        time: event.eventTime,
        datacontenttype: 'application/json',
        data: event.data,
    };
}

describe('the published example events (Microsoft Learn, Azure subscription as an Event Grid source)', () => {
    it.each([
        ['ResourceWriteSuccess', writeSample.event],
        ['ResourceDeleteSuccess', deleteSample.event],
    ])(
        'parses the %s example exactly as published, and drops it with a reason: a storage account is no PEC',
        (_, sample) => {
            const parsed = parseResourceEvent(clone(sample));
            if (!('value' in parsed)) {
                throw new Error(`the documented event did not parse: ${parsed.reason}`);
            }
            expect(parsed.value.id).toBe(sample.id);
            expect(parsed.value.operationName).toBe(sample.data.operationName);
            const classified = classifyResourceEvent(parsed.value, options);
            expect(classified).toEqual({ reason: expect.stringContaining('not about a private endpoint connection') });
        },
    );

    it('reads the requester from the documented claim names (long URIs for the object id, tenant and UPN)', () => {
        const parsed = parseResourceEvent(documentedEventOnPec());
        if (!('value' in parsed)) {
            throw new Error(parsed.reason);
        }
        const classified = classifyResourceEvent(parsed.value, options);
        if (!('value' in classified)) {
            throw new Error(classified.reason);
        }
        expect(classified.value.server).toMatchObject({
            subscriptionId: ids.ours,
            resourceGroup: 'rg-data',
            name: 'db-01',
        });
        expect(classified.value.pecName).toBe('pe-app.1a2b3c4d-0000-4000-8000-000000000000');
        expect(classified.value.requester).toEqual({
            objectId,
            tenantId,
            upn: 'alice@contoso.com',
            name: 'Alice Example',
            appId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
            ipAddress: '203.0.113.7',
        });
    });

    it('takes the same documented event in the CloudEvents 1.0 schema', () => {
        const grid = parseResourceEvent(documentedEventOnPec());
        const cloud = parseResourceEvent(asCloudEvent(documentedEventOnPec()));
        expect(cloud).toEqual(grid);
    });

    it('treats a write whose claims name our own identity (appid) as our own, so our approvals never loop', () => {
        const event = documentedEventOnPec();
        event.data.claims.appid = ids.client.toUpperCase();
        const parsed = parseResourceEvent(event);
        if (!('value' in parsed)) {
            throw new Error(parsed.reason);
        }
        expect(classifyResourceEvent(parsed.value, options)).toEqual({
            reason: expect.stringContaining('our own identity'),
        });
    });

    it('drops the documented failure and cancel variants (same schema, other event types) before any I/O', () => {
        for (const type of ['Microsoft.Resources.ResourceWriteFailure', 'Microsoft.Resources.ResourceWriteCancel']) {
            const event = documentedEventOnPec();
            event.eventType = type;
            const parsed = parseResourceEvent(event);
            if (!('value' in parsed)) {
                throw new Error(parsed.reason);
            }
            expect(classifyResourceEvent(parsed.value, options)).toEqual({
                reason: expect.stringContaining('not a successful write or delete'),
            });
        }
    });
});
