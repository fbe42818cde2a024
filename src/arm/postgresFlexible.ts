import { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import type { ArmSettings } from './armCommon';
import type { KindOperations } from './armPecAdapter';
import { sdkOperations } from './sdkOperations';
import { withoutFormData } from '../http/pipeline';

/**
 * PostgreSQL flexible server through @azure/arm-postgresql-flexible, pinned at 9.0.0 (api 2025-08-01): 8.x kept the
 * update in another operation group, so a silent upgrade would break the PUT.
 */
export function postgresFlexibleOperations(settings: ArmSettings): KindOperations {
    return sdkOperations(settings, (credential, subscriptionId, options) => {
        const client = withoutFormData(
            new PostgreSQLManagementFlexibleServerClient(credential, subscriptionId, options),
        );
        const privateEndpoints = new Map<string, string>();
        client.pipeline.addPolicy(privateEndpointBack(privateEndpoints));
        const pecs = client.privateEndpointConnections;
        return {
            servers: {
                get: async (rg, server, o) => {
                    const raw = await client.servers.get(rg, server, o);
                    // Flexible servers keep public network access under properties.network.
                    return { ...raw, publicNetworkAccess: raw.network?.publicNetworkAccess };
                },
                list: (o) => client.servers.listBySubscription(o),
            },
            privateEndpointConnections: {
                listByServer: (rg, server, o) => pecs.listByServer(rg, server, o),
                get: (rg, server, name, o) => pecs.get(rg, server, name, o),
                beginCreateOrUpdate: async (rg, server, name, body, o) => {
                    const key = connectionKey(rg, server, name);
                    const id = body.privateEndpoint?.id;
                    if (id) {
                        privateEndpoints.set(key, id);
                    }
                    try {
                        return await pecs.beginUpdate(rg, server, name, body, o);
                    } finally {
                        privateEndpoints.delete(key);
                    }
                },
            },
        };
    });
}

/** A connection's path from its resource group on, as the SDK's request URL ends (case-insensitive, decoded). */
function connectionKey(rg: string, server: string, name: string): string {
    return `/resourcegroups/${rg}/providers/microsoft.dbforpostgresql/flexibleservers/${server}/privateendpointconnections/${name}`.toLowerCase();
}

/**
 * The SDK's model marks `privateEndpoint.id` read-only and leaves it out of the PUT (Azure CLI's flexible-server
 * command sends `"privateEndpoint": {}` for the same reason): the id the adapter read just before goes back in, while
 * that PUT (and the pipeline's retries of it) is on its way.
 */
function privateEndpointBack(pending: ReadonlyMap<string, string>): PipelinePolicy {
    return {
        name: 'pecGatePrivateEndpointBack',
        sendRequest: (request, next) => {
            if (request.method === 'PUT' && typeof request.body === 'string' && pending.size > 0) {
                const path = decodeURIComponent(new URL(request.url).pathname).toLowerCase();
                const at = path.indexOf('/resourcegroups/');
                const id = at >= 0 ? pending.get(path.slice(at)) : undefined;
                if (id) {
                    const body = JSON.parse(request.body) as { properties?: { privateEndpoint?: { id?: string } } };
                    if (body.properties && !body.properties.privateEndpoint?.id) {
                        body.properties.privateEndpoint = { id };
                        request.body = JSON.stringify(body);
                    }
                }
            }
            return next(request);
        },
    };
}
