import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

/**
 * Starts Azurite (from npm, in memory) on free ports for the whole run and hands its connection string to the test
 * workers through the environment. Real storage semantics (ETags, 409/412) come from the real emulator, not a mock.
 */

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const port = (server.address() as net.AddressInfo).port;
            server.close(() => resolve(port));
        });
    });
}

async function waitForPort(port: number, deadline: number): Promise<void> {
    while (Date.now() < deadline) {
        const ok = await new Promise<boolean>((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => {
                socket.end();
                resolve(true);
            });
            socket.once('error', () => resolve(false));
        });
        if (ok) {
            return;
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Azurite did not listen on port ${port} in time`);
}

export const devAccountKey = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export default async function globalSetup(): Promise<void> {
    const [blob, queue, table] = [await freePort(), await freePort(), await freePort()];
    const bin = path.join(__dirname, '..', '..', 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
    const child = spawn(
        process.execPath,
        [
            bin,
            '--silent',
            '--inMemoryPersistence',
            '--skipApiVersionCheck',
            '--blobHost',
            '127.0.0.1',
            '--queueHost',
            '127.0.0.1',
            '--tableHost',
            '127.0.0.1',
            '--blobPort',
            String(blob),
            '--queuePort',
            String(queue),
            '--tablePort',
            String(table),
        ],
        { stdio: 'ignore', detached: false },
    );
    // Jest would otherwise wait for Azurite to end on its own; the teardown stops it.
    child.unref();
    process.env.AZURITE_PID = String(child.pid);
    const deadline = Date.now() + 30_000;
    await Promise.all([waitForPort(queue, deadline), waitForPort(table, deadline)]);
    const base = 'http://127.0.0.1';
    process.env.AZURITE_CONNECTION_STRING = [
        'DefaultEndpointsProtocol=http',
        'AccountName=devstoreaccount1',
        `AccountKey=${devAccountKey}`,
        `BlobEndpoint=${base}:${blob}/devstoreaccount1`,
        `QueueEndpoint=${base}:${queue}/devstoreaccount1`,
        `TableEndpoint=${base}:${table}/devstoreaccount1`,
    ].join(';');
}
