import { kindInfo, serverKinds, type ServerKind } from '../../src/domain/ids';
import {
    classifyResourceEvent,
    parseResourceEvent,
    requesterFromClaims,
    type ClassifyOptions,
    type Parsed,
    type Relevance,
    type ResourceEvent,
} from '../../src/workflow/resourceEvent';
import { ids, resourceWriteEvent } from '../harness';

/** Pure: parsing and classification happen before any I/O, so these tests need no emulator. */

const options: ClassifyOptions = {
    watchedSubscriptionIds: [ids.ours, ids.second],
    ownClientId: ids.client,
    watchedKinds: serverKinds,
};

function serverId(kind: ServerKind, subscriptionId: string = ids.ours, name = 'db-01'): string {
    const { provider, type } = kindInfo[kind];
    return `/subscriptions/${subscriptionId}/resourceGroups/rg-data/providers/${provider}/${type}/${name}`;
}

function pecUri(kind: ServerKind, child = 'privateEndpointConnections', subscriptionId: string = ids.ours): string {
    return `${serverId(kind, subscriptionId)}/${child}/pe-app.1a2b3c4d-0000-4000-8000-000000000000`;
}

/** The same event as a CloudEvents 1.0 envelope (what an Event Grid subscription with that schema delivers). */
function asCloudEvent(event: Record<string, unknown>): Record<string, unknown> {
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

function parsed(input: unknown): ResourceEvent {
    const result = parseResourceEvent(input);
    if (!('value' in result)) {
        throw new Error(`expected the event to parse: ${result.reason}`);
    }
    return result.value;
}

function relevant(result: Parsed<Relevance>): Relevance {
    if (!('value' in result)) {
        throw new Error(`expected a relevant event: ${result.reason}`);
    }
    return result.value;
}

function reasonOf<T>(result: Parsed<T>): string {
    if (!('reason' in result)) {
        throw new Error(`expected a reason, got ${JSON.stringify(result.value)}`);
    }
    return result.reason;
}

function classify(raw: Record<string, unknown>, opts: ClassifyOptions = options): Parsed<Relevance> {
    return classifyResourceEvent(parsed(raw), opts);
}

describe('parseResourceEvent', () => {
    it('reads an Event Grid schema event', () => {
        const raw = resourceWriteEvent(pecUri('postgres-flexible'));
        const data = raw.data as Record<string, unknown>;
        const event = parsed(raw);
        expect(event).toEqual({
            id: raw.id,
            type: 'Microsoft.Resources.ResourceWriteSuccess',
            subject: raw.subject,
            operationName: 'Microsoft.DBforPostgreSQL/flexibleServers/privateEndpointConnections/write',
            resourceUri: pecUri('postgres-flexible'),
            correlationId: data.correlationId,
            claims: data.claims,
        });
    });

    it('reads a CloudEvents 1.0 event the same way', () => {
        const raw = resourceWriteEvent(pecUri('mysql-single'));
        const grid = parsed(raw);
        const cloud = parsed(asCloudEvent(raw));
        expect(cloud).toEqual(grid);
        expect(cloud.type).toBe('Microsoft.Resources.ResourceWriteSuccess');
    });

    it('falls back to the subject for the resource and to the event id for the correlation id', () => {
        const raw = resourceWriteEvent(pecUri('mysql-flexible'));
        const data = { ...(raw.data as Record<string, unknown>) };
        delete data.resourceUri;
        delete data.correlationId;
        delete data.claims;
        const event = parsed({ ...raw, data });
        expect(event.resourceUri).toBe(raw.subject);
        expect(event.correlationId).toBe(raw.id);
        expect(event.claims).toEqual({});
    });

    const valid = resourceWriteEvent(pecUri('postgres-single'));
    const validData = valid.data as Record<string, unknown>;
    const { data: _data, ...withoutData } = valid;
    const { operationName: _op, ...dataWithoutOperation } = validData;
    const { specversion: _sv, ...cloudWithoutVersion } = asCloudEvent(valid);

    it.each<[string, unknown]>([
        ['null', null],
        ['undefined', undefined],
        ['a string', 'Microsoft.Resources.ResourceWriteSuccess'],
        ['a number', 42],
        ['an array', [valid]],
        ['an empty object', {}],
        ['an event without data', withoutData],
        ['an event with null data', { ...valid, data: null }],
        ['an event with string data', { ...valid, data: 'x' }],
        ['data without operationName', { ...valid, data: dataWithoutOperation }],
        ['an empty operationName', { ...valid, data: { ...validData, operationName: '' } }],
        ['a numeric operationName', { ...valid, data: { ...validData, operationName: 7 } }],
        ['a numeric resourceUri', { ...valid, data: { ...validData, resourceUri: 7 } }],
        ['claims that are not an object', { ...valid, data: { ...validData, claims: 'oid=x' } }],
        ['a numeric eventType', { ...valid, eventType: 1 }],
        ['a missing subject', { ...valid, subject: undefined }],
        ['a missing id', { ...valid, id: undefined }],
        ['a CloudEvent without data', { ...asCloudEvent(valid), data: undefined }],
        ['a CloudEvent of another spec version', { ...asCloudEvent(valid), specversion: '0.3' }],
        ['a CloudEvent without specversion', cloudWithoutVersion],
    ])('gives a reason for %s and does not throw', (_, input) => {
        let result: Parsed<ResourceEvent> | undefined;
        expect(() => {
            result = parseResourceEvent(input);
        }).not.toThrow();
        const reason = reasonOf(result!);
        expect(reason).toMatch(/^not an Event Grid or CloudEvents resource event: /);
    });

    it('names the offending field in the reason', () => {
        expect(reasonOf(parseResourceEvent({ ...valid, data: dataWithoutOperation }))).toMatch(/data\.operationName/);
        expect(reasonOf(parseResourceEvent(null))).toMatch(/\(root\)/);
    });
});

describe('classifyResourceEvent', () => {
    const eventTypes = ['Microsoft.Resources.ResourceWriteSuccess', 'Microsoft.Resources.ResourceDeleteSuccess'];
    const children = ['privateEndpointConnections', 'privateEndpointConnectionProxies'];
    const cases = serverKinds.flatMap((kind) =>
        children.flatMap((child) => eventTypes.map((eventType) => [kind, child, eventType] as const)),
    );

    it.each(cases)('accepts %s %s on %s', (kind, child, eventType) => {
        const uri = pecUri(kind, child);
        const verb = eventType.endsWith('DeleteSuccess') ? 'delete' : 'write';
        const { provider, type } = kindInfo[kind];
        const raw = resourceWriteEvent(uri, { eventType, operation: `${provider}/${type}/${child}/${verb}` });
        for (const input of [raw, asCloudEvent(raw)]) {
            const relevance = relevant(classifyResourceEvent(parsed(input), options));
            expect(relevance.server).toEqual({
                kind,
                subscriptionId: ids.ours,
                resourceGroup: 'rg-data',
                name: 'db-01',
            });
            expect(relevance.pecName).toBe('pe-app.1a2b3c4d-0000-4000-8000-000000000000');
            expect(relevance.requester?.upn).toBe('dev@contoso.com');
        }
    });

    it('accepts any watched subscription, case-insensitively, and the event type in any casing', () => {
        const raw = resourceWriteEvent(
            pecUri('mysql-flexible', 'privateEndpointConnections', ids.second.toUpperCase()),
            {
                eventType: 'microsoft.resources.resourcewritesuccess',
            },
        );
        expect(relevant(classify(raw)).server.subscriptionId).toBe(ids.second.toUpperCase());
    });

    it.each([
        'Microsoft.Resources.ResourceWriteFailure',
        'Microsoft.Resources.ResourceWriteCancel',
        'Microsoft.Resources.ResourceDeleteFailure',
        'Microsoft.Resources.ResourceDeleteCancel',
        'Microsoft.Resources.ResourceActionSuccess',
    ])('ignores a %s event', (eventType) => {
        const reason = reasonOf(classify(resourceWriteEvent(pecUri('postgres-single'), { eventType })));
        expect(reason).toBe(`event type ${eventType} is not a successful write or delete`);
    });

    it('ignores other operations on the server', () => {
        const uri = `${serverId('postgres-flexible')}/firewallRules/allow-office`;
        const operation = 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules/write';
        const reason = reasonOf(classify(resourceWriteEvent(uri, { operation })));
        expect(reason).toMatch(/operation .*firewallRules\/write is not about a private endpoint connection/);
    });

    it('ignores PECs of a resource type the registry does not know', () => {
        const uri = `/subscriptions/${ids.ours}/resourceGroups/rg-data/providers/Microsoft.Search/searchServices/s-01/privateEndpointConnections/pe-app.1`;
        const operation = 'Microsoft.Search/searchServices/privateEndpointConnections/write';
        const raw = resourceWriteEvent(uri, { operation });
        expect(reasonOf(classify(raw))).toMatch(/is not a PEC of a supported resource kind/);
    });

    it('ignores PECs of a registered kind that is not watched, before any I/O', () => {
        const uri = `/subscriptions/${ids.ours}/resourceGroups/rg-data/providers/Microsoft.Sql/servers/sql-01/privateEndpointConnections/pe-app.1`;
        const raw = resourceWriteEvent(uri, { operation: 'Microsoft.Sql/servers/privateEndpointConnections/write' });
        const { watchedKinds: _all, ...defaults } = options;
        expect(reasonOf(classify(raw, defaults))).toBe(
            'resource kind sql-server (Azure SQL logical server) is not watched (WATCHED_RESOURCE_KINDS)',
        );
        expect(reasonOf(classify(raw, { ...options, watchedKinds: ['key-vault'] }))).toMatch(/is not watched/);
        expect(relevant(classify(raw, { ...options, watchedKinds: ['sql-server'] })).server.kind).toBe('sql-server');
    });

    it('ignores a write to the server itself', () => {
        const raw = resourceWriteEvent(serverId('mysql-single'), {
            operation: 'Microsoft.DBforMySQL/servers/privateEndpointConnections/write',
        });
        expect(reasonOf(classify(raw))).toMatch(/is a server, not a private endpoint connection/);
    });

    it('ignores a server write whose operation is not about PECs', () => {
        const raw = resourceWriteEvent(serverId('mysql-single'), { operation: 'Microsoft.DBforMySQL/servers/write' });
        expect(reasonOf(classify(raw))).toMatch(/is not about a private endpoint connection/);
    });

    it.each([
        ['a server name with a query', 'rg-data', 'pg?api-version=1', 'pe-app.1', 'not a server name'],
        ['a server name with a fragment', 'rg-data', 'pg-01#x', 'pe-app.1', 'not a server name'],
        ['a server name too short for the service', 'rg-data', 'pg', 'pe-app.1', 'not a server name'],
        ['a server name starting with a hyphen', 'rg-data', '-pg-01', 'pe-app.1', 'not a server name'],
        ['a server name of 64 characters', 'rg-data', 'p'.repeat(64), 'pe-app.1', 'not a server name'],
        ['a resource group of 91 characters', 'r'.repeat(91), 'pg-01', 'pe-app.1', 'not a resource group name'],
        ['a resource group ending in a period', 'rg-data.', 'pg-01', 'pe-app.1', 'not a resource group name'],
        ['a resource group with a percent sign', 'rg%2e', 'pg-01', 'pe-app.1', 'not a resource group name'],
        ['a connection name with a query', 'rg-data', 'pg-01', 'pe?x=1', 'not a private endpoint connection name'],
        ['a connection name with a space', 'rg-data', 'pg-01', 'pe app', 'not a private endpoint connection name'],
        [
            'a connection name of 129 characters',
            'rg-data',
            'pg-01',
            'p'.repeat(129),
            'not a private endpoint connection name',
        ],
    ])('ignores %s before any I/O', (_, rg, server, pec, problem) => {
        const uri = `/subscriptions/${ids.ours}/resourceGroups/${rg}/providers/Microsoft.DBforPostgreSQL/flexibleServers/${server}/privateEndpointConnections/${pec}`;
        expect(reasonOf(classify(resourceWriteEvent(uri)))).toBe(
            `resource ${uri} names nothing ARM could hold: ${problem}`,
        );
    });

    it('accepts the names ARM gives: any case, Unicode resource groups, connection names with periods', () => {
        for (const [rg, server, pec] of [
            ['RG-Data_(prod)', 'PG-Prod-01', 'pe-app.1a2b3c4d-0000-4000-8000-000000000000'],
            ['ресурсы', 'a'.repeat(63), 'p_e.x'],
            ['r', '001', 'p'.repeat(128)],
        ]) {
            const uri = `/subscriptions/${ids.ours}/resourceGroups/${rg}/providers/Microsoft.DBforMySQL/servers/${server}/privateEndpointConnections/${pec}`;
            expect(relevant(classify(resourceWriteEvent(uri))).server).toMatchObject({
                resourceGroup: rg,
                name: server,
            });
        }
    });

    it('ignores subscriptions that are not watched', () => {
        const raw = resourceWriteEvent(pecUri('postgres-flexible', 'privateEndpointConnections', ids.foreign), {
            subscriptionId: ids.foreign,
        });
        expect(reasonOf(classify(raw))).toBe(`subscription ${ids.foreign} is not watched`);
    });

    it('ignores the write our own identity made (our decision being applied), case-insensitively', () => {
        for (const appid of [ids.client, ids.client.toUpperCase()]) {
            const raw = resourceWriteEvent(pecUri('postgres-flexible'), {
                claims: { appid, oid: '11111111-2222-4333-8444-555555555555', tid: ids.tenant },
            });
            expect(reasonOf(classify(raw))).toMatch(/our own identity/);
        }
        const upperOwn = { ...options, ownClientId: ids.client.toUpperCase() };
        const raw = resourceWriteEvent(pecUri('postgres-flexible'), { claims: { appid: ids.client } });
        expect(reasonOf(classify(raw, upperOwn))).toMatch(/our own identity/);
    });

    it('accepts a write by another app and one without claims', () => {
        const other = resourceWriteEvent(pecUri('postgres-flexible'), { claims: { appid: ids.approvers } });
        expect(relevant(classify(other)).requester).toEqual({ appId: ids.approvers });
        const none = resourceWriteEvent(pecUri('postgres-flexible'), { claims: {} });
        const relevance = relevant(classify(none));
        expect(relevance.requester).toBeUndefined();
        expect('requester' in relevance).toBe(false);
    });
});

describe('requester claims', () => {
    it('reads the long URI claim names ARM puts in events', () => {
        const raw = resourceWriteEvent(pecUri('postgres-single'));
        expect(relevant(classify(raw)).requester).toEqual({
            objectId: '0a0a0a0a-1111-4111-8111-000000000abc',
            upn: 'dev@contoso.com',
            name: 'Dev Eloper',
            tenantId: ids.tenant,
            appId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
            ipAddress: '203.0.113.7',
        });
    });

    it('reads the short claim names too', () => {
        expect(
            requesterFromClaims({
                oid: 'o-short',
                upn: 'short@contoso.com',
                name: 'Short Name',
                tid: ids.foreignTenant,
                appid: 'app-short',
                ipaddr: '198.51.100.1',
            }),
        ).toEqual({
            objectId: 'o-short',
            upn: 'short@contoso.com',
            name: 'Short Name',
            tenantId: ids.foreignTenant,
            appId: 'app-short',
            ipAddress: '198.51.100.1',
        });
        expect(
            requesterFromClaims({
                unique_name: 'guest@fabrikam.com',
                'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name': 'Long Name',
                azp: 'app-v2',
            }),
        ).toEqual({ upn: 'guest@fabrikam.com', name: 'Long Name', appId: 'app-v2' });
    });

    it('prefers the long URI form when both are present', () => {
        expect(
            requesterFromClaims({
                oid: 'short',
                'http://schemas.microsoft.com/identity/claims/objectidentifier': 'long',
                tid: 'short-tenant',
                'http://schemas.microsoft.com/identity/claims/tenantid': 'long-tenant',
            }),
        ).toEqual({ objectId: 'long', tenantId: 'long-tenant' });
    });

    it('skips values that are not non-blank strings and trims the rest', () => {
        expect(
            requesterFromClaims({
                oid: 42,
                'http://schemas.microsoft.com/identity/claims/objectidentifier': '   ',
                upn: ['a@b.c'],
                name: { first: 'x' },
                tid: null,
                appid: '  app-1  ',
                ipaddr: true,
            }),
        ).toEqual({ appId: 'app-1' });
    });

    it('caps every value at 256 characters', () => {
        const long = 'x'.repeat(5000);
        const requester = requesterFromClaims({
            oid: long,
            upn: long,
            name: long,
            tid: long,
            appid: long,
            ipaddr: long,
        });
        expect(Object.keys(requester)).toHaveLength(6);
        for (const value of Object.values(requester)) {
            expect(value).toHaveLength(256);
        }
        const raw = resourceWriteEvent(pecUri('mysql-flexible'), { claims: { name: long } });
        expect(relevant(classify(raw)).requester?.name).toHaveLength(256);
    });
});
