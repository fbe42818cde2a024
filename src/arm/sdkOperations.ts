import type { TokenCredential } from '@azure/core-auth';
import { armClientOptions, type ArmSettings, type FlatPec, type RawServer } from './armCommon';
import type { KindOperations, PecStateBody } from './armPecAdapter';

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
        /** The servers of the subscription. The single-server SDKs ask api 2017-12-01, whose answer has no nextLink. */
        list(options?: { abortSignal?: AbortSignal }): AsyncIterable<{ id?: string }>;
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
        listServers: (subscriptionId, abortSignal) => client(subscriptionId).servers.list({ abortSignal }),
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
