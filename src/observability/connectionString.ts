/**
 * Application Insights settings, parsed without loading any SDK: config validation runs on every cold start.
 */

export interface ConnectionStringParts {
    instrumentationKey: string;
    ingestionEndpoint: string;
}

/**
 * `InstrumentationKey=…;IngestionEndpoint=https://…/;…` (keys case-insensitive, order free). Without an
 * IngestionEndpoint, an `EndpointSuffix` (with an optional `Location`) makes `https://{location.}dc.{suffix}`, as
 * Microsoft's connection-string documentation and the SDKs' parsers build it; without either, the public endpoint.
 */
export function parseConnectionString(value: string): ConnectionStringParts | undefined {
    const parts = keyValues(value);
    const instrumentationKey = parts.get('instrumentationkey');
    const suffix = parts.get('endpointsuffix')?.replace(/^\.+|\/+$/g, '');
    const location = parts.get('location')?.replace(/\.+$/, '');
    const ingestionEndpoint =
        parts.get('ingestionendpoint') ??
        (suffix ? `https://${location ? `${location}.` : ''}dc.${suffix}` : 'https://dc.services.visualstudio.com');
    if (!instrumentationKey || !/^https:\/\/[^/]/i.test(ingestionEndpoint)) {
        return undefined;
    }
    return { instrumentationKey, ingestionEndpoint: ingestionEndpoint.replace(/\/+$/, '') };
}

/**
 * `Authorization=AAD` (with `ClientId=…` for a user-assigned identity) turns on Entra auth for ingestion, as the
 * host itself reads it. Anything else in the setting is a mistake worth stopping for: with local auth disabled on the
 * resource, events sent without a token are silently dropped.
 */
export function parseAuthenticationString(value: string): { aad: true; clientId?: string } | undefined {
    const parts = keyValues(value);
    if (parts.get('authorization')?.toUpperCase() !== 'AAD') {
        return undefined;
    }
    const clientId = parts.get('clientid');
    return clientId ? { aad: true, clientId } : { aad: true };
}

function keyValues(value: string): Map<string, string> {
    const parts = new Map<string, string>();
    for (const pair of value.split(';')) {
        const at = pair.indexOf('=');
        if (at > 0) {
            parts.set(pair.slice(0, at).trim().toLowerCase(), pair.slice(at + 1).trim());
        }
    }
    return parts;
}

/** The scope of an Entra token for the ingestion API (the double slash is the resource's own). */
export const ingestionScope = 'https://monitor.azure.com//.default';
