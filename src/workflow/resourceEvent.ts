import * as z from 'zod';
import { kindInfo, parseTarget, type ServerKind, type ServerRef } from '../domain/ids';
import { defaultWatchedKinds } from '../domain/resourceKinds';
import type { Requester } from '../domain/request';

/**
 * Event Grid events from a subscription system topic, in the Event Grid schema or as CloudEvents 1.0, validated and
 * reduced to what the workflow needs. Classification happens here, before any I/O, so irrelevant and malformed events
 * cost nothing.
 */

const claimsSchema = z.record(z.string(), z.unknown()).optional();

const dataSchema = z.object({
    operationName: z.string().min(1),
    resourceUri: z.string().optional(),
    subscriptionId: z.string().optional(),
    tenantId: z.string().optional(),
    status: z.string().optional(),
    correlationId: z.string().optional(),
    claims: claimsSchema,
});

const eventGridSchema = z.object({
    id: z.string().min(1),
    eventType: z.string().min(1),
    subject: z.string().min(1),
    data: dataSchema,
});

const cloudEventSchema = z.object({
    specversion: z.literal('1.0'),
    id: z.string().min(1),
    type: z.string().min(1),
    subject: z.string().min(1),
    data: dataSchema,
});

export interface ResourceEvent {
    id: string;
    type: string;
    subject: string;
    operationName: string;
    resourceUri: string;
    correlationId: string;
    claims: Record<string, unknown>;
}

export type Parsed<T> = { value: T } | { reason: string };

export function parseResourceEvent(input: unknown): Parsed<ResourceEvent> {
    const asCloud = cloudEventSchema.safeParse(input);
    if (asCloud.success) {
        const e = asCloud.data;
        return { value: toEvent(e.id, e.type, e.subject, e.data) };
    }
    const asGrid = eventGridSchema.safeParse(input);
    if (asGrid.success) {
        const e = asGrid.data;
        return { value: toEvent(e.id, e.eventType, e.subject, e.data) };
    }
    const issue = asGrid.error.issues[0];
    return {
        reason: `not an Event Grid or CloudEvents resource event: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unreadable'}`,
    };
}

function toEvent(id: string, type: string, subject: string, data: z.infer<typeof dataSchema>): ResourceEvent {
    return {
        id,
        type,
        subject,
        operationName: data.operationName,
        resourceUri: data.resourceUri ?? subject,
        correlationId: data.correlationId ?? id,
        claims: data.claims ?? {},
    };
}

const relevantTypes = new Set([
    'microsoft.resources.resourcewritesuccess',
    'microsoft.resources.resourcedeletesuccess',
]);

export interface Relevance {
    server: ServerRef;
    /** The PEC or proxy the event names; a proxy and its connection share the name. */
    pecName?: string;
    requester?: Requester;
}

export interface ClassifyOptions {
    watchedSubscriptionIds: readonly string[];
    /** Our own managed identity's client id: writes made by it are our own approvals, which must not loop. */
    ownClientId: string;
    /** The resource kinds watched; the four database kinds when absent. */
    watchedKinds?: readonly ServerKind[];
}

/** Decides whether an event concerns a PEC on a watched server. The reason is logged for everything dropped. */
export function classifyResourceEvent(event: ResourceEvent, options: ClassifyOptions): Parsed<Relevance> {
    if (!relevantTypes.has(event.type.toLowerCase())) {
        return { reason: `event type ${event.type} is not a successful write or delete` };
    }
    if (!/privateEndpointConnection/i.test(event.operationName)) {
        return { reason: `operation ${event.operationName} is not about a private endpoint connection` };
    }
    let target;
    try {
        target = parseTarget(event.resourceUri);
    } catch {
        return { reason: `resource ${event.resourceUri} is not a PEC of a supported resource kind` };
    }
    if (!(options.watchedKinds ?? defaultWatchedKinds).includes(target.server.kind)) {
        return {
            reason: `resource kind ${target.server.kind} (${kindInfo[target.server.kind].label}) is not watched (WATCHED_RESOURCE_KINDS)`,
        };
    }
    if (!target.child) {
        return { reason: `resource ${event.resourceUri} is a server, not a private endpoint connection` };
    }
    const badName = nameProblem(target.server, target.child.name);
    if (badName) {
        return { reason: `resource ${event.resourceUri} names nothing ARM could hold: ${badName}` };
    }
    const subscription = target.server.subscriptionId.toLowerCase();
    if (!options.watchedSubscriptionIds.some((s) => s.toLowerCase() === subscription)) {
        return { reason: `subscription ${target.server.subscriptionId} is not watched` };
    }
    const requester = requesterFromClaims(event.claims);
    if (requester.appId && requester.appId.toLowerCase() === options.ownClientId.toLowerCase()) {
        return { reason: 'the write was made by our own identity (our own decision being applied)' };
    }
    return {
        value: {
            server: target.server,
            pecName: target.child.name,
            ...(Object.keys(requester).length > 0 ? { requester } : {}),
        },
    };
}

// ARM's naming rules for what an event names (a little wider than the services', never narrower). A name that breaks
// them is no resource of ours. Sent on, it would reach ARM as a request it refuses (a 400, which pecEvents throws, so
// Event Grid retries the event for a day) or, with `?` or `#`, as a URL that means something else.
const resourceGroupPattern = /^[-\w.()\p{L}\p{N}]{1,90}$/u;
const connectionNamePattern = /^[-\w.]{1,128}$/;

function nameProblem(server: ServerRef, connection: string): string | undefined {
    if (!resourceGroupPattern.test(server.resourceGroup) || server.resourceGroup.endsWith('.')) {
        return 'not a resource group name';
    }
    if (!kindInfo[server.kind].namePattern.test(server.name)) {
        return 'not a server name';
    }
    if (!connectionNamePattern.test(connection)) {
        return 'not a private endpoint connection name';
    }
    return undefined;
}

const claimNames = {
    objectId: ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'oid'],
    upn: ['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn', 'upn', 'unique_name'],
    name: ['name', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name'],
    tenantId: ['http://schemas.microsoft.com/identity/claims/tenantid', 'tid'],
    appId: ['appid', 'azp'],
    ipAddress: ['ipaddr'],
} as const;

export function requesterFromClaims(claims: Record<string, unknown>): Requester {
    const requester: Requester = {};
    for (const [field, names] of Object.entries(claimNames) as [keyof Requester, readonly string[]][]) {
        for (const name of names) {
            const value = claims[name];
            if (typeof value === 'string' && value.trim()) {
                requester[field] = value.trim().slice(0, 256);
                break;
            }
        }
    }
    return requester;
}
