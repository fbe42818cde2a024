export default async function globalTeardown(): Promise<void> {
    const pid = Number(process.env.AZURITE_PID);
    if (!pid) {
        return;
    }
    try {
        process.kill(pid, 'SIGTERM');
    } catch {
        return; // already gone
    }
    for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 100));
        try {
            process.kill(pid, 0);
        } catch {
            return;
        }
    }
    process.kill(pid, 'SIGKILL');
}
