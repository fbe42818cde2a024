import { PostgreSQLManagementClient } from '@azure/arm-postgresql';
import type { ArmSettings } from './armCommon';
import type { KindOperations } from './armPecAdapter';
import { sdkOperations } from './sdkOperations';
import { withoutFormData } from '../http/pipeline';

/** PostgreSQL single server (api 2018-06-01) through @azure/arm-postgresql. */
export function postgresSingleOperations(settings: ArmSettings): KindOperations {
    return sdkOperations(settings, (credential, subscriptionId, options) => {
        return withoutFormData(new PostgreSQLManagementClient(credential, subscriptionId, options));
    });
}
