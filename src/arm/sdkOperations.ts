import type { TokenCredential } from '@azure/core-auth';
import { armClientOptions, inlinePec, type ArmSettings, type FlatPec, type RawServer } from './armCommon';
import type { KindOperations, ListedResource, PecStateBody } from './armPecAdapter';

interface Poller {
    pollUntilDone(options?: { abortSignal?: AbortSignal }): Promise<unknown>;
    /** The serialized state, for `resumeFrom` (core-lro's LroEngine and createHttpPoller both offer it). */
    toString(): string;
}

/**
 * The shape the three ARM SDKs share: flattened models, a server get, and a long-running PUT of a PEC. The single-server
 * SDKs (@azure/arm-postgresql, @azure/arm-mysql) match it as they are; the flexible one is mapped to it.
 */
export interface SdkClient {
    servers: {
        get(rg: string, server: string, options?: { abortSignal?: AbortSignal }): Promise<RawServer>;
        /**
         * The servers of the subscription, every page (the SDK's pager). The single-server SDKs ask api 2017-12-01,
         * whose answer has no nextLink. Each server carries its connections as its model has them: nested
         * (`properties`, single server) or flattened (flexible).
         */
        list(options?: {
            abortSignal?: AbortSignal;
        }): AsyncIterable<{ id?: string; privateEndpointConnections?: unknown }>;
    };
    privateEndpointConnections: {
        listByServer(rg: string, server: string, options?: { abortSignal?: AbortSignal }): AsyncIterable<FlatPec>;
        get(rg: string, server: string, name: string, options?: { abortSignal?: AbortSignal }): Promise<FlatPec>;
        beginCreateOrUpdate(
            rg: string,
            server: string,
            name: string,
            body: PecStateBody,
            options?: { abortSignal?: AbortSignal; resumeFrom?: string },
        ): Promise<Poller>;
    };
}

export type SdkClientFactory = (
    credential: TokenCredential,
    subscriptionId: string,
    options: ReturnType<typeof armClientOptions>,
) => SdkClient;

export function sdkOperations(settings: ArmSettings, create: SdkClientFactory): KindOperations {
    const clients = new Map<string, SdkClient>();
    const client = (subscriptionId: string) => {
        let c = clients.get(subscriptionId);
        if (!c) {
            c = create(settings.credential, subscriptionId, armClientOptions(settings));
            clients.set(subscriptionId, c);
        }
        return c;
    };
    return {
        async *listServers(subscriptionId, abortSignal) {
            for await (const server of client(subscriptionId).servers.list({ abortSignal })) {
                const inline = server.privateEndpointConnections;
                const item: ListedResource = server.id === undefined ? {} : { id: server.id };
                // Absent (not an empty array) means the answer did not say: the adapter then lists them per server.
                if (Array.isArray(inline)) {
                    item.pecs = inline.map(inlinePec);
                }
                yield item;
            }
        },
        listPecs: (server, abortSignal) =>
            client(server.subscriptionId).privateEndpointConnections.listByServer(server.resourceGroup, server.name, {
                abortSignal,
            }),
        getPec: (pec, abortSignal) =>
            client(pec.server.subscriptionId).privateEndpointConnections.get(
                pec.server.resourceGroup,
                pec.server.name,
                pec.name,
                { abortSignal },
            ),
        getServer: (server, abortSignal) =>
            client(server.subscriptionId).servers.get(server.resourceGroup, server.name, { abortSignal }),
        putPecState: async (pec, body, abortSignal, hooks) => {
            // The single server requires both status and description in the PUT; the body always carries both. With
            // resumeFrom the SDK sends no PUT: it polls the operation the serialized state names.
            const poller = await client(pec.server.subscriptionId).privateEndpointConnections.beginCreateOrUpdate(
                pec.server.resourceGroup,
                pec.server.name,
                pec.name,
                body,
                { abortSignal, ...(hooks?.resumeFrom ? { resumeFrom: hooks.resumeFrom } : {}) },
            );
            await hooks?.onStarted?.(poller.toString());
            await poller.pollUntilDone({ abortSignal });
        },
    };
}
