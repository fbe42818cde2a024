import { ServiceClient } from '@azure/core-client';
import { createHttpPoller, type LroResponse } from '@azure/core-lro';
import { createHttpHeaders, createPipelineRequest, RestError, type PipelineResponse } from '@azure/core-rest-pipeline';
import { formatPecId, formatServerId, type ServerRef } from '../domain/ids';
import type { ResourceKindInfo } from '../domain/resourceKinds';
import { armClientOptions, type ArmSettings, type FlatPec, type RawServer } from './armCommon';
import type { KindOperations, ListedResource } from './armPecAdapter';
import { withoutFormData } from '../http/pipeline';

/**
 * The one generic adapter: every kind the registry marks `generic` (all but the three with an Azure SDK client) goes
 * through ARM's common privateEndpointConnections contract here, on the same core-client pipeline the SDKs use (the
 * token, retries of 429 and 5xx honouring Retry-After, the per-try timeout), with core-lro polling the long-running PUT
 * as a generated SDK would (Azure-AsyncOperation, then Location, then the resource's own provisioning state). What
 * differs between kinds is data in the registry entry: the type, the api-version, the state's spelling, where public
 * network access sits, the PUT body's quirks.
 */

/** A connection as ARM answers it: the common contract's shape, with each provider's spelling of the state. */
export interface RawPec {
    id?: string;
    name?: string;
    properties?: {
        privateEndpoint?: { id?: string };
        privateLinkServiceConnectionState?: {
            status?: string;
            description?: string;
            actionsRequired?: string;
            actionRequired?: string;
        };
        provisioningState?: string;
    };
}

export function flattenPec(raw: RawPec): FlatPec {
    const state = raw.properties?.privateLinkServiceConnectionState;
    return {
        ...(raw.id === undefined ? {} : { id: raw.id }),
        ...(raw.name === undefined ? {} : { name: raw.name }),
        ...(raw.properties?.privateEndpoint ? { privateEndpoint: raw.properties.privateEndpoint } : {}),
        ...(state
            ? { privateLinkServiceConnectionState: { status: state.status, description: state.description } }
            : {}),
        ...(raw.properties?.provisioningState === undefined
            ? {}
            : { provisioningState: raw.properties.provisioningState }),
    };
}

/** The value at `path` in a JSON object, if it is a string. */
function stringAt(value: unknown, path: readonly string[]): string | undefined {
    let at: unknown = value;
    for (const key of path) {
        at = at && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined;
    }
    return typeof at === 'string' ? at : undefined;
}

export function genericOperations(info: ResourceKindInfo) {
    return (settings: ArmSettings): KindOperations => {
        const options = armClientOptions(settings);
        const client = withoutFormData(new ServiceClient({ ...options, credential: settings.credential }));

        const send = async (method: 'GET' | 'PUT', url: string, signal: AbortSignal, body?: unknown) => {
            const request = createPipelineRequest({
                url: url.startsWith('https://') ? url : `${options.endpoint}${url}`,
                method,
                abortSignal: signal,
                headers: createHttpHeaders({ accept: 'application/json', 'content-type': 'application/json' }),
                ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            });
            const response = await client.sendRequest(request);
            const parsed = parseBody(response);
            if (response.status >= 400) {
                const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
                throw new RestError(error?.message ?? `ARM answered ${response.status}`, {
                    code: error?.code,
                    statusCode: response.status,
                    request,
                    response,
                });
            }
            return { response, parsed };
        };

        const withVersion = (path: string) => `${path}?api-version=${info.apiVersion}`;
        // Each segment of a resource id encoded, as the SDKs' URL templates do: a name is data, never URL syntax.
        const encoded = (id: string) => id.split('/').map(encodeURIComponent).join('/');
        const toLro = ({ response, parsed }: { response: PipelineResponse; parsed: unknown }): LroResponse => ({
            flatResponse: parsed,
            rawResponse: { statusCode: response.status, headers: response.headers.toJSON(), body: parsed },
        });

        /** Every item of an ARM list, following nextLink (which already carries the api-version). */
        async function* listAll<T>(path: string, signal: AbortSignal): AsyncGenerator<T> {
            let next: string | undefined = withVersion(path);
            while (next) {
                const { parsed } = await send('GET', next, signal);
                const page = parsed as { value?: T[]; nextLink?: string | null } | undefined;
                yield* page?.value ?? [];
                next = page?.nextLink || undefined;
            }
        }

        return {
            async *listServers(subscriptionId, signal) {
                const path = `/subscriptions/${encodeURIComponent(subscriptionId)}/providers/${info.provider}/${info.type}`;
                for await (const raw of listAll<{ id?: string; properties?: { privateEndpointConnections?: unknown } }>(
                    path,
                    signal,
                )) {
                    const inline = raw.properties?.privateEndpointConnections;
                    const item: ListedResource = { ...(raw.id === undefined ? {} : { id: raw.id }) };
                    if (info.inlineConnections && Array.isArray(inline)) {
                        item.pecs = (inline as RawPec[]).map(flattenPec);
                    }
                    yield item;
                }
            },
            async *listPecs(server: ServerRef, signal: AbortSignal) {
                for await (const raw of listAll<RawPec>(
                    `${encoded(formatServerId(server))}/privateEndpointConnections`,
                    signal,
                )) {
                    yield flattenPec(raw);
                }
            },
            getPec: async (pec, signal) =>
                flattenPec((await send('GET', withVersion(encoded(formatPecId(pec))), signal)).parsed as RawPec),
            getServer: async (server, signal) => {
                const raw = (await send('GET', withVersion(encoded(formatServerId(server))), signal)).parsed as
                    RawServer | undefined;
                return {
                    ...raw,
                    publicNetworkAccess: stringAt(raw, info.publicNetworkAccessPath),
                };
            },
            putPecState: async (pec, body, signal) => {
                const path = withVersion(encoded(formatPecId(pec)));
                const poller = await createHttpPoller(
                    {
                        // Without the path and method, core-lro skips the final GET of the resource after a PUT.
                        requestPath: path,
                        requestMethod: 'PUT',
                        sendInitialRequest: async () => toLro(await send('PUT', path, signal, { properties: body })),
                        sendPollRequest: async (pollPath, pollOptions) =>
                            toLro(
                                await send(
                                    'GET',
                                    pollPath,
                                    (pollOptions?.abortSignal as AbortSignal | undefined) ?? signal,
                                ),
                            ),
                    },
                    { resourceLocationConfig: 'azure-async-operation' },
                );
                // Poll once straight away, as the generated SDKs do inside begin*(): otherwise core-lro sleeps its
                // default interval before the first poll even when the operation is already done.
                await poller.poll({ abortSignal: signal });
                await poller.pollUntilDone({ abortSignal: signal });
            },
        };
    };
}

function parseBody(response: PipelineResponse): unknown {
    if (!response.bodyAsText) {
        return undefined;
    }
    try {
        return JSON.parse(response.bodyAsText);
    } catch {
        return undefined;
    }
}
