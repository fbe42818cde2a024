'use strict';
/**
 * One timer run of the sweep in a fresh node process, on the compiled app (dist/, as `npm run build` writes it), with
 * the app's settings in its environment: the process holds the app and nothing else (the emulators and Azurite run
 * in other processes), so its resident set is the sweep's. RSS is sampled every 20 ms with process.memoryUsage() from
 * before the app is loaded to after the run; prints one JSON line.
 */
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { setInterval, clearInterval } = require('node:timers');

const dist = process.argv[2];
const mb = (bytes) => bytes / (1024 * 1024);
let peak = process.memoryUsage().rss;
const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss);
};
const timer = setInterval(sample, 20);

async function main() {
    const startRss = process.memoryUsage().rss;
    const { getDeps } = require(path.join(dist, 'src', 'runtime.js'));
    const { sweep } = require(path.join(dist, 'src', 'workflow', 'sweep.js'));
    const deps = getDeps();
    const lines = [];
    const keep =
        (level) =>
        (...args) =>
            lines.push(`${level}: ${args.map(String).join(' ')}`);
    const log = { info: keep('info'), warn: keep('warn'), error: keep('error') };
    const loadedRss = process.memoryUsage().rss;
    const started = performance.now();
    const report = await sweep(deps, log);
    const seconds = (performance.now() - started) / 1000;
    await deps.telemetry.flush?.().catch(() => undefined);
    sample();
    clearInterval(timer);
    process.stdout.write(
        JSON.stringify({
            seconds,
            startRssMb: mb(startRss),
            loadedRssMb: mb(loadedRss),
            peakRssMb: mb(peak),
            report: {
                servers: report.servers,
                pendingPecs: report.pendingPecs,
                waiting: report.waiting.length,
                opened: report.opened.length,
                bypasses: report.bypasses.length,
                baselined: report.baselined.length,
                errors: report.errors,
                blind: report.blind,
                scopes: report.scopes,
            },
            warnings: lines.filter((l) => !l.startsWith('info')).slice(0, 5),
        }),
    );
}

main().then(
    () => process.exit(0),
    (err) => {
        process.stderr.write(String(err && err.stack ? err.stack : err));
        process.exit(1);
    },
);
