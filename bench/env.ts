/**
 * The benchmark's world: Azurite (the same way Jest's global setup starts it) and the test harness's emulators, in
 * this plain node process, with the app's settings pointing at them.
 */
import globalSetup from '../test/setup/globalSetup';
import globalTeardown from '../test/setup/globalTeardown';
import { closeSharedTokenEmulator, startHarness, type Harness } from '../test/harness';

export interface BenchWorld {
    h: Harness;
    close(): Promise<void>;
}

/** Azurite, started once for the whole bench (a section with a world of its own still needs it). */
export async function startAzurite(): Promise<void> {
    if (!process.env.AZURITE_CONNECTION_STRING) {
        await globalSetup();
    }
}

export async function startWorld(settings: Record<string, string> = {}): Promise<BenchWorld> {
    await startAzurite();
    const h = await startHarness({ settings });
    return {
        h,
        async close() {
            await h.close();
            await closeSharedTokenEmulator();
        },
    };
}

export async function stopAzurite(): Promise<void> {
    await globalTeardown();
    delete process.env.AZURITE_CONNECTION_STRING;
}
