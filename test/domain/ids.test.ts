import {
    formatPecId,
    formatServerId,
    parsePecId,
    parsePrivateEndpointId,
    parseServerId,
    parseTarget,
    pecKey,
    sameId,
    serverKinds,
    kindInfo,
} from '../../src/domain/ids';
import { ValidationError } from '../../src/domain/errors';
import { assessOrigin, isForeignTenant } from '../../src/domain/origin';

const sub = '11111111-1111-1111-1111-111111111111';

describe('resource ids', () => {
    it.each(serverKinds)('round-trips a %s server and PEC id', (kind) => {
        const { provider, type } = kindInfo[kind];
        const serverId = `/subscriptions/${sub}/resourceGroups/rg-Data/providers/${provider}/${type}/Db-01`;
        const server = parseServerId(serverId);
        expect(server).toEqual({ kind, subscriptionId: sub, resourceGroup: 'rg-Data', name: 'Db-01' });
        expect(formatServerId(server)).toBe(serverId);
        const pecId = `${serverId}/privateEndpointConnections/pe-app.1a2b3c4d-0000-0000-0000-000000000000`;
        const pec = parsePecId(pecId);
        expect(pec.server).toEqual(server);
        expect(pec.name).toBe('pe-app.1a2b3c4d-0000-0000-0000-000000000000');
        expect(formatPecId(pec)).toBe(pecId);
    });

    it('parses case-insensitively and keeps the original casing', () => {
        const id = `/SUBSCRIPTIONS/${sub}/RESOURCEGROUPS/RG/PROVIDERS/microsoft.dbforpostgresql/FLEXIBLESERVERS/Srv/PRIVATEENDPOINTCONNECTIONS/Pe.1`;
        const pec = parsePecId(id);
        expect(pec.server.kind).toBe('postgres-flexible');
        expect(pec.server.name).toBe('Srv');
        expect(pec.name).toBe('Pe.1');
        expect(sameId(id, formatPecId(pec))).toBe(true);
        expect(pecKey(pec)).toBe(formatPecId(pec).toLowerCase());
    });

    it('recognises PEC proxies, which the network service writes for the requester', () => {
        const target = parseTarget(
            `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1/privateEndpointConnectionProxies/pe.1`,
        );
        expect(target.server.kind).toBe('mysql-single');
        expect(target.child).toEqual({ type: 'privateEndpointConnectionProxies', name: 'pe.1' });
    });

    it.each([
        [
            'a type the registry does not know',
            `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.Search/searchServices/s1`,
        ],
        [
            'another child',
            `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1/databases/d`,
        ],
        [
            'a deeper path',
            `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.DBforMySQL/servers/s1/privateEndpointConnections/a/b`,
        ],
        ['no resource group', `/subscriptions/${sub}/providers/Microsoft.DBforMySQL/servers/s1`],
        ['garbage', 'not an id'],
        ['empty', ''],
    ])('rejects %s clearly', (_, id) => {
        expect(() => parseTarget(id)).toThrow(ValidationError);
        expect(() => parseTarget(id)).toThrow(/of a supported resource kind/);
    });

    it('tells a server id from a PEC id', () => {
        const serverId = `/subscriptions/${sub}/resourceGroups/rg/providers/Microsoft.DBforMySQL/flexibleServers/s1`;
        expect(() => parsePecId(serverId)).toThrow(/Expected a private endpoint connection id/);
        expect(() => parseServerId(`${serverId}/privateEndpointConnections/x`)).toThrow(/Expected a server id/);
    });
});

describe('private endpoint origin', () => {
    const peId = (s: string) =>
        `/subscriptions/${s}/resourceGroups/rg-app/providers/Microsoft.Network/privateEndpoints/pe-app`;

    it('parses the private endpoint id', () => {
        expect(parsePrivateEndpointId(peId(sub))).toMatchObject({
            subscriptionId: sub,
            resourceGroup: 'rg-app',
            name: 'pe-app',
        });
        expect(() =>
            parsePrivateEndpointId('/subscriptions/x/resourceGroups/r/providers/Microsoft.Sql/servers/s'),
        ).toThrow(ValidationError);
    });

    it('trusts only listed subscriptions, case-insensitively', () => {
        expect(assessOrigin(peId(sub.toUpperCase()), [sub]).trusted).toBe(true);
        const foreign = assessOrigin(peId('22222222-2222-2222-2222-222222222222'), [sub]);
        expect(foreign).toMatchObject({ trusted: false, subscriptionId: '22222222-2222-2222-2222-222222222222' });
        expect(foreign.reason).toMatch(/untrusted subscription/);
    });

    it('never trusts a private endpoint id it cannot read', () => {
        expect(assessOrigin('', [sub])).toMatchObject({ trusted: false, subscriptionId: undefined });
    });

    it('compares the requester tenant with ours', () => {
        expect(isForeignTenant(undefined, sub)).toBeUndefined();
        expect(isForeignTenant(sub.toUpperCase(), sub)).toBe(false);
        expect(isForeignTenant('33333333-3333-3333-3333-333333333333', sub)).toBe(true);
    });
});
