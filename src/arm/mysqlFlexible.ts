import { ServiceClient } from '@azure/core-client';
import { createHttpPoller, type LroResponse } from '@azure/core-lro';
import { createHttpHeaders, createPipelineRequest, RestError, type PipelineResponse } from '@azure/core-rest-pipeline';
import { formatPecId, formatServerId, type ServerRef } from '../domain/ids';
import { armClientOptions, type ArmSettings, type FlatPec, type RawServer } from './armCommon';
import type { KindOperations } from './armPecAdapter';
import { withoutFormData } from '../http/pipeline';

/**
 * MySQL flexible server. No published @azure/arm-mysql-flexible version has the private endpoint connection
 * operations, so this calls ARM directly through the same core-client pipeline the SDKs use (token, retries with
 * Retry-After) and polls with core-lro, as a generated SDK would.
 */
export const mysqlFlexibleApiVersion = '2023-06-30';

interface RawPec {
    id?: string;
    name?: string;
    properties?: {
        privateEndpoint?: { id?: string };
        privateLinkServiceConnectionState?: { status?: string; description?: string };
        provisioningState?: string;
    };
}

function flatten(raw: RawPec): FlatPec {
    return {
        ...(raw.id === undefined ? {} : { id: raw.id }),
        ...(raw.name === undefined ? {} : { name: raw.name }),
        ...(raw.properties ?? {}),
    };
}

export function mysqlFlexibleOperations(settings: ArmSettings): KindOperations {
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

    const withVersion = (path: string) => `${path}?api-version=${mysqlFlexibleApiVersion}`;
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
            const page = parsed as { value?: T[]; nextLink?: string } | undefined;
            yield* page?.value ?? [];
            next = page?.nextLink || undefined;
        }
    }

    return {
        listServers: (subscriptionId, signal) =>
            listAll<{ id?: string }>(
                `/subscriptions/${encodeURIComponent(subscriptionId)}/providers/Microsoft.DBforMySQL/flexibleServers`,
                signal,
            ),
        async *listPecs(server: ServerRef, signal: AbortSignal) {
            for await (const raw of listAll<RawPec>(
                `${encoded(formatServerId(server))}/privateEndpointConnections`,
                signal,
            )) {
                yield flatten(raw);
            }
        },
        getPec: async (pec, signal) =>
            flatten((await send('GET', withVersion(encoded(formatPecId(pec))), signal)).parsed as RawPec),
        getServer: async (server, signal) => {
            const raw = (await send('GET', withVersion(encoded(formatServerId(server))), signal))
                .parsed as RawServer & {
                properties?: { network?: { publicNetworkAccess?: string } };
            };
            return { ...raw, publicNetworkAccess: raw.properties?.network?.publicNetworkAccess };
        },
        putPecState: async (pec, body, signal, hooks) => {
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
                {
                    resourceLocationConfig: 'azure-async-operation',
                    // A stored operation is polled; no PUT is sent.
                    ...(hooks?.resumeFrom ? { restoreFrom: hooks.resumeFrom } : {}),
                },
            );
            // Poll once straight away, as the generated SDKs do inside begin*(): otherwise core-lro sleeps its default
            // interval before the first poll even when the operation is already done.
            await poller.poll({ abortSignal: signal });
            await hooks?.onStarted?.(poller.toString());
            await poller.pollUntilDone({ abortSignal: signal });
        },
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
