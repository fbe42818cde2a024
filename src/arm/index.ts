import { kindInfo, type PecRef, type ServerKind, type ServerRef } from '../domain/ids';
import type { DecisionStatus, Pec, ServerContext } from '../domain/pec';
import type { ArmSettings } from './armCommon';
import type { KindOperations } from './armPecAdapter';
import type { ListedServer, PecProvider } from './pecProvider';

export type { ListedServer, PecProvider } from './pecProvider';
export type { ArmSettings } from './armCommon';

type OperationsFactory = (settings: ArmSettings) => KindOperations;

/**
 * The kinds that keep an Azure SDK client. Only the SDK of the kind in use is loaded: an event for a PostgreSQL
 * flexible server never pays for loading the single-server SDKs (cold start).
 */
const sdkLoaders: Partial<Record<ServerKind, () => Promise<OperationsFactory>>> = {
    'postgres-single': async () => (await import('./postgresSingle')).postgresSingleOperations,
    'mysql-single': async () => (await import('./mysqlSingle')).mysqlSingleOperations,
    'postgres-flexible': async () => (await import('./postgresFlexible')).postgresFlexibleOperations,
};

/** Every other kind goes through the one generic adapter, configured by its registry entry. */
function loaderOf(kind: ServerKind): () => Promise<OperationsFactory> {
    const info = kindInfo[kind];
    const sdk = sdkLoaders[kind];
    if (info.client === 'sdk') {
        if (!sdk) {
            throw new Error(`Resource kind ${kind} is marked sdk in the registry but has no SDK adapter`);
        }
        return sdk;
    }
    return async () => (await import('./genericKind')).genericOperations(info);
}

/** The real PecProvider: dispatches each call to the adapter of the resource's kind. */
export function createArmPecProvider(settings: ArmSettings): PecProvider {
    const adapters = new Map<ServerKind, Promise<PecProvider>>();
    const forKind = (kind: ServerKind): Promise<PecProvider> => {
        let adapter = adapters.get(kind);
        if (!adapter) {
            adapter = Promise.all([loaderOf(kind)(), import('./armPecAdapter')]).then(
                ([operations, { ArmPecAdapter }]) => new ArmPecAdapter(operations(settings), settings),
            );
            adapter.catch(() => adapters.delete(kind));
            adapters.set(kind, adapter);
        }
        return adapter;
    };
    return {
        listServers: async (subscriptionId: string, kind: ServerKind) =>
            (await forKind(kind)).listServers(subscriptionId, kind),
        listServersWithPecs: async (subscriptionId: string, kind: ServerKind): Promise<ListedServer[]> => {
            const adapter = await forKind(kind);
            return adapter.listServersWithPecs
                ? adapter.listServersWithPecs(subscriptionId, kind)
                : (await adapter.listServers(subscriptionId, kind)).map((server) => ({ server }));
        },
        listPecs: async (server: ServerRef) => (await forKind(server.kind)).listPecs(server),
        getPec: async (pec: PecRef) => (await forKind(pec.server.kind)).getPec(pec),
        getServerContext: async (
            server: ServerRef,
            knownPecs?: readonly Pec[] | Promise<readonly Pec[]>,
        ): Promise<ServerContext> => (await forKind(server.kind)).getServerContext(server, knownPecs),
        setPecState: async (pec: PecRef, status: DecisionStatus, description: string, known?: Pec) =>
            (await forKind(pec.server.kind)).setPecState(pec, status, description, known),
        prepare: (kind: ServerKind) => {
            forKind(kind).catch(() => undefined);
        },
    };
}
