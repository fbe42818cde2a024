import { PostgreSQLManagementFlexibleServerClient } from '@azure/arm-postgresql-flexible';
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
                beginCreateOrUpdate: (rg, server, name, body, o) => pecs.beginUpdate(rg, server, name, body, o),
            },
        };
    });
}
