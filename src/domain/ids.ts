import { ValidationError } from './errors';

/**
 * Resource ids for the four gated server kinds and their Private Endpoint Connections (PECs).
 * ARM ids are case-insensitive: we compare lower-cased and keep the original casing for display.
 */

export const serverKinds = ['postgres-single', 'mysql-single', 'postgres-flexible', 'mysql-flexible'] as const;
export type ServerKind = (typeof serverKinds)[number];

interface KindInfo {
    provider: 'Microsoft.DBforPostgreSQL' | 'Microsoft.DBforMySQL';
    type: 'servers' | 'flexibleServers';
    label: string;
}

export const kindInfo: Record<ServerKind, KindInfo> = {
    'postgres-single': { provider: 'Microsoft.DBforPostgreSQL', type: 'servers', label: 'PostgreSQL single server' },
    'mysql-single': { provider: 'Microsoft.DBforMySQL', type: 'servers', label: 'MySQL single server' },
    'postgres-flexible': {
        provider: 'Microsoft.DBforPostgreSQL',
        type: 'flexibleServers',
        label: 'PostgreSQL flexible server',
    },
    'mysql-flexible': { provider: 'Microsoft.DBforMySQL', type: 'flexibleServers', label: 'MySQL flexible server' },
};

export interface ServerRef {
    kind: ServerKind;
    subscriptionId: string;
    resourceGroup: string;
    name: string;
}

export interface PecRef {
    server: ServerRef;
    /** The connection's name, usually `{privateEndpointName}.{guid}`. */
    name: string;
}

export interface PrivateEndpointRef {
    subscriptionId: string;
    resourceGroup: string;
    name: string;
    id: string;
}

/** Which child of the server an id or event points at. Proxies are written by the network service for the requester. */
export type PecChildType = 'privateEndpointConnections' | 'privateEndpointConnectionProxies';

export interface ParsedTarget {
    server: ServerRef;
    child?: { type: PecChildType; name: string };
}

const segment = '([^/]+)';
const targetPattern = new RegExp(
    `^/subscriptions/${segment}/resourceGroups/${segment}/providers/(Microsoft\\.DBfor(?:PostgreSQL|MySQL))/(servers|flexibleServers)/${segment}(?:/(privateEndpointConnections|privateEndpointConnectionProxies)/${segment})?/?$`,
    'i',
);
const privateEndpointPattern = new RegExp(
    `^/subscriptions/${segment}/resourceGroups/${segment}/providers/Microsoft\\.Network/privateEndpoints/${segment}/?$`,
    'i',
);

function kindOf(provider: string, type: string): ServerKind {
    const engine = provider.toLowerCase() === 'microsoft.dbforpostgresql' ? 'postgres' : 'mysql';
    return `${engine}-${type.toLowerCase() === 'servers' ? 'single' : 'flexible'}`;
}

/** Parses a server id, a PEC id or a PEC proxy id. Anything else (another provider, a deeper child) is rejected. */
export function parseTarget(id: string): ParsedTarget {
    const m = targetPattern.exec(id.trim());
    if (!m) {
        throw new ValidationError(
            `Not a PostgreSQL/MySQL (single or flexible) server or private endpoint connection id: "${truncate(id)}"`,
        );
    }
    const [, subscriptionId, resourceGroup, provider, type, name, childType, childName] = m as unknown as string[];
    const server: ServerRef = {
        kind: kindOf(provider!, type!),
        subscriptionId: subscriptionId!,
        resourceGroup: resourceGroup!,
        name: name!,
    };
    if (childType === undefined) {
        return { server };
    }
    const canonicalChild: PecChildType = childType.toLowerCase().endsWith('proxies')
        ? 'privateEndpointConnectionProxies'
        : 'privateEndpointConnections';
    return { server, child: { type: canonicalChild, name: childName! } };
}

export function parseServerId(id: string): ServerRef {
    const target = parseTarget(id);
    if (target.child) {
        throw new ValidationError(`Expected a server id, got a child resource id: "${truncate(id)}"`);
    }
    return target.server;
}

export function parsePecId(id: string): PecRef {
    const target = parseTarget(id);
    if (target.child?.type !== 'privateEndpointConnections') {
        throw new ValidationError(`Expected a private endpoint connection id: "${truncate(id)}"`);
    }
    return { server: target.server, name: target.child.name };
}

export function formatServerId(server: ServerRef): string {
    const { provider, type } = kindInfo[server.kind];
    return `/subscriptions/${server.subscriptionId}/resourceGroups/${server.resourceGroup}/providers/${provider}/${type}/${server.name}`;
}

export function formatPecId(pec: PecRef): string {
    return `${formatServerId(pec.server)}/privateEndpointConnections/${pec.name}`;
}

export function parsePrivateEndpointId(id: string): PrivateEndpointRef {
    const m = privateEndpointPattern.exec(id.trim());
    if (!m) {
        throw new ValidationError(`Not a private endpoint id: "${truncate(id)}"`);
    }
    const [, subscriptionId, resourceGroup, name] = m as unknown as string[];
    return { subscriptionId: subscriptionId!, resourceGroup: resourceGroup!, name: name!, id: id.trim() };
}

/** The comparison key for any ARM id or name: ARM treats them case-insensitively. */
export function idKey(id: string): string {
    return id.trim().replace(/\/+$/, '').toLowerCase();
}

export function sameId(a: string, b: string): boolean {
    return idKey(a) === idKey(b);
}

export function serverKey(server: ServerRef): string {
    return idKey(formatServerId(server));
}

export function pecKey(pec: PecRef): string {
    return idKey(formatPecId(pec));
}

function truncate(value: string): string {
    return value.length > 200 ? `${value.slice(0, 200)}…` : value;
}
