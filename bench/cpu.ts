/**
 * CPU time of this process and of Azurite over a stretch of the bench, from the kernel's own accounting. On 2 cores a
 * burst is bounded by where the CPU goes, which wall time alone cannot show: this process holds the app and the ARM,
 * Bot Connector and Application Insights emulators; Azurite runs apart, in one JavaScript thread.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuSample {
    /** User + system CPU of this process, ms. */
    processMs: number;
    /** The same for Azurite, or undefined where the kernel does not say (no /proc) or Azurite is not this bench's. */
    azuriteMs?: number;
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
    if (ticksPerSecond === undefined) {
        try {
            ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
        } catch {
            ticksPerSecond = 100;
        }
    }
    return ticksPerSecond;
}

function azuriteCpuMs(): number | undefined {
    const pid = process.env.AZURITE_PID;
    if (!pid) {
        return undefined;
    }
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        // The command name may hold spaces: count from the field after it (state); utime and stime follow 11 and 12 on.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
    } catch {
        return undefined;
    }
}

export function cpuNow(): CpuSample {
    const usage = process.cpuUsage();
    return { processMs: (usage.user + usage.system) / 1000, azuriteMs: azuriteCpuMs() };
}

export function cpuSince(start: CpuSample): CpuSample {
    const now = cpuNow();
    return {
        processMs: now.processMs - start.processMs,
        azuriteMs:
            now.azuriteMs === undefined || start.azuriteMs === undefined ? undefined : now.azuriteMs - start.azuriteMs,
    };
}
