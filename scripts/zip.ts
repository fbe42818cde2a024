import { zipSync, type Zippable } from 'fflate';

/**
 * The one zip writer of the deploy package and the Teams app package. Deterministic on purpose: the same files give the
 * same bytes on any machine, so a rebuild with no change is visibly no change (same hash), and a diff of two packages
 * is a diff of their contents.
 */

/**
 * Every entry gets this modification time. It is built from local-time fields because ZIP stores DOS local time and
 * fflate converts with the Date's local getters: a UTC instant would give different bytes in different time zones.
 * Noon, not midnight, keeps it inside 1980 for any reader that converts it to UTC.
 */
const fixedMtime = new Date(1980, 0, 1, 12, 0, 0);

/** Unix, regular file, rw-r--r--: unzip on Linux (and the Functions host's own unzip) gets ordinary readable files. */
const unixFileAttributes = { os: 3, attrs: 0o100644 * 0x10000 };

/** Zips the files (name → bytes) at the archive root, in name order, with maximum compression. */
export function deterministicZip(files: Readonly<Record<string, Uint8Array>>): Uint8Array {
    const entries: Zippable = {};
    for (const name of Object.keys(files).sort()) {
        const bytes = files[name];
        if (bytes !== undefined) {
            entries[name] = [bytes, { ...unixFileAttributes, mtime: fixedMtime }];
        }
    }
    return zipSync(entries, { level: 9, mtime: fixedMtime });
}

/** A human size: "1.23 MB" or "456.7 kB" (decimal units, as Azure's limits are stated). */
export function formatBytes(bytes: number): string {
    return bytes >= 1_000_000 ? `${(bytes / 1_000_000).toFixed(2)} MB` : `${(bytes / 1000).toFixed(1)} kB`;
}
