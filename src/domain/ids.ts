import { ValidationError } from './errors';

import { resourceKinds, type ResourceKindId, type ResourceKindInfo } from './resourceKinds';

/**
 * Resource ids for the gated Private Link resources (the kinds in ./resourceKinds.ts) and their Private Endpoint
 * Connections (PECs). "Server" names any such resource here (a database server, a storage account, a vault...).
 * ARM ids are case-insensitive: we compare lower-cased and keep the original casing for display.
 */

/** Every kind the registry knows, in its order. */
export const serverKinds = resourceKinds.map((k) => k.id) as unknown as readonly [ResourceKindId, ...ResourceKindId[]];
export type ServerKind = ResourceKindId;

export const kindInfo = Object.fromEntries(resourceKinds.map((k) => [k.id, k])) as Record<ServerKind, ResourceKindInfo>;

const kindByType = new Map<string, ServerKind>(
    resourceKinds.map((k) => [`${k.provider}/${k.type}`.toLowerCase(), k.id]),
);

/** The kind of an ARM namespace and type, compared ignoring case; undefined for a type the registry does not know. */
export function kindOfType(provider: string, type: string): ServerKind | undefined {
    return kindByType.get(`${provider}/${type}`.toLowerCase());
}

export function isServerKind(value: string): value is ServerKind {
    return (serverKinds as readonly string[]).includes(value);
}

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
    `^/subscriptions/${segment}/resourceGroups/${segment}/providers/${segment}/${segment}/${segment}(?:/(privateEndpointConnections|privateEndpointConnectionProxies)/${segment})?/?$`,
    'i',
);
const privateEndpointPattern = new RegExp(
    `^/subscriptions/${segment}/resourceGroups/${segment}/providers/Microsoft\\.Network/privateEndpoints/${segment}/?$`,
    'i',
);

/** Parses a resource id, a PEC id or a PEC proxy id of a registered kind. Anything else (another type, a deeper child) is rejected. */
export function parseTarget(id: string): ParsedTarget {
    const m = targetPattern.exec(id.trim());
    const [, subscriptionId, resourceGroup, provider, type, name, childType, childName] = (m ?? []) as string[];
    const kind = m ? kindOfType(provider!, type!) : undefined;
    if (!kind) {
        throw new ValidationError(
            `Not a private endpoint connection, or its resource, of a supported resource kind: "${truncate(id)}"`,
        );
    }
    const server: ServerRef = {
        kind,
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
