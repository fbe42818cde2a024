import { MySQLManagementClient } from '@azure/arm-mysql';
import type { ArmSettings } from './armCommon';
import type { KindOperations } from './armPecAdapter';
import { sdkOperations } from './sdkOperations';
import { withoutFormData } from '../http/pipeline';

/** MySQL single server (api 2018-06-01) through @azure/arm-mysql. */
export function mysqlSingleOperations(settings: ArmSettings): KindOperations {
    return sdkOperations(settings, (credential, subscriptionId, options) => {
        return withoutFormData(new MySQLManagementClient(credential, subscriptionId, options));
    });
}
