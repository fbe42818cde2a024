import type { PecRef, ServerKind, ServerRef } from '../domain/ids';
import type { DecisionStatus, Pec, ServerContext } from '../domain/pec';
import type { ArmSettings } from './armCommon';
import type { KindOperations } from './armPecAdapter';
import type { PecProvider, SetStateOptions } from './pecProvider';

export type { PecProvider, SetStateOptions } from './pecProvider';
export type { ArmSettings } from './armCommon';

/**
 * Loads only the SDK of the kind in use: an event for a PostgreSQL flexible server never pays for loading the MySQL
 * or single-server SDKs (cold start).
 */
const loaders: Record<ServerKind, () => Promise<(settings: ArmSettings) => KindOperations>> = {
    'postgres-single': async () => (await import('./postgresSingle')).postgresSingleOperations,
    'mysql-single': async () => (await import('./mysqlSingle')).mysqlSingleOperations,
    'postgres-flexible': async () => (await import('./postgresFlexible')).postgresFlexibleOperations,
    'mysql-flexible': async () => (await import('./mysqlFlexible')).mysqlFlexibleOperations,
};

/** The real PecProvider: dispatches each call to the adapter of the server's kind. */
export function createArmPecProvider(settings: ArmSettings): PecProvider {
    const adapters = new Map<ServerKind, Promise<PecProvider>>();
    const forKind = (kind: ServerKind): Promise<PecProvider> => {
        let adapter = adapters.get(kind);
        if (!adapter) {
            adapter = Promise.all([loaders[kind](), import('./armPecAdapter')]).then(
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
        listPecs: async (server: ServerRef) => (await forKind(server.kind)).listPecs(server),
        getPec: async (pec: PecRef) => (await forKind(pec.server.kind)).getPec(pec),
        getServerContext: async (
            server: ServerRef,
            knownPecs?: readonly Pec[] | Promise<readonly Pec[]>,
        ): Promise<ServerContext> => (await forKind(server.kind)).getServerContext(server, knownPecs),
        setPecState: async (
            pec: PecRef,
            status: DecisionStatus,
            description: string,
            known?: Pec,
            options?: SetStateOptions,
        ) => (await forKind(pec.server.kind)).setPecState(pec, status, description, known, options),
        prepare: (kind: ServerKind) => {
            forKind(kind).catch(() => undefined);
        },
    };
}
