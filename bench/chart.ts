/**
 * The burst's chart for the README: events per second over time, and the latency percentiles (p50, p95, p99) of the
 * events finished in each interval, drawn from the burst's own timings as an SVG and rendered to a PNG by Debian's
 * Chromium through playwright-core (never a downloaded browser). The SVG is plain text built here, so the chart needs
 * no charting library; Chromium only turns it into pixels.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { percentile } from './stats';

/** One event of the burst: when its handler was called and when it returned, in ms from the burst's start. */
export interface EventTiming {
    startMs: number;
    endMs: number;
}

export interface BurstSeries {
    /** Width of an interval, in ms. */
    bucketMs: number;
    /** Per interval: its start (s), the events finished in it per second, and their latency percentiles (ms). */
    points: { t: number; eventsPerSecond: number; p50: number; p95: number; p99: number }[];
    /** Over the whole burst. */
    p50: number;
    p95: number;
    p99: number;
}

export function burstSeries(timings: readonly EventTiming[]): BurstSeries {
    const end = Math.max(0, ...timings.map((t) => t.endMs));
    // About 60 intervals over the burst, none shorter than 100 ms: enough points for a line, enough events per point.
    const bucketMs = Math.max(100, Math.round(end / 60 / 50) * 50);
    const buckets = Math.max(1, Math.ceil(end / bucketMs));
    const latencies: number[][] = Array.from({ length: buckets }, () => []);
    for (const t of timings) {
        latencies[Math.min(buckets - 1, Math.floor(t.endMs / bucketMs))]!.push(t.endMs - t.startMs);
    }
    const all = timings.map((t) => t.endMs - t.startMs);
    return {
        bucketMs,
        points: latencies.map((l, i) => ({
            t: (i * bucketMs) / 1000,
            eventsPerSecond: (l.length * 1000) / bucketMs,
            p50: l.length ? percentile(l, 50) : Number.NaN,
            p95: l.length ? percentile(l, 95) : Number.NaN,
            p99: l.length ? percentile(l, 99) : Number.NaN,
        })),
        p50: percentile(all, 50),
        p95: percentile(all, 95),
        p99: percentile(all, 99),
    };
}

const width = 960;
const panelHeight = 250;
const margin = { left: 70, right: 150, top: 40, bottom: 40 };

/** A round step for an axis that reaches `max`, about five ticks. */
function niceStep(max: number): number {
    const raw = max / 5;
    const pow = 10 ** Math.floor(Math.log10(raw || 1));
    return ([1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow) || 1;
}

function escape(text: string): string {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(
    top: number,
    title: string,
    unit: string,
    seconds: number,
    lines: { label: string; colour: string; values: { t: number; v: number }[] }[],
    goal?: { value: number; label: string },
): string {
    const max = Math.max(goal?.value ?? 0, ...lines.flatMap((l) => l.values.map((p) => p.v)).filter(Number.isFinite));
    const step = niceStep(max);
    const top_ = Math.ceil(max / step) * step || step;
    const plotW = width - margin.left - margin.right;
    const plotH = panelHeight - margin.top - margin.bottom;
    const x = (t: number) => margin.left + (seconds > 0 ? (t / seconds) * plotW : 0);
    const y = (v: number) => top + margin.top + plotH - (v / top_) * plotH;
    const out: string[] = [
        `<text x="${margin.left}" y="${top + 24}" font-size="16" font-weight="600">${escape(title)}</text>`,
    ];
    for (let v = 0; v <= top_ + 1e-9; v += step) {
        out.push(
            `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#e3e3e3"/>`,
            `<text x="${margin.left - 8}" y="${y(v) + 4}" font-size="12" text-anchor="end">${Math.round(v)}</text>`,
        );
    }
    const tStep = niceStep(seconds);
    for (let t = 0; t <= seconds + 1e-9; t += tStep) {
        out.push(
            `<text x="${x(t)}" y="${top + margin.top + plotH + 18}" font-size="12" text-anchor="middle">${Math.round(t * 10) / 10} s</text>`,
        );
    }
    out.push(
        `<text x="${margin.left - 50}" y="${top + margin.top + plotH / 2}" font-size="12" transform="rotate(-90 ${margin.left - 50} ${top + margin.top + plotH / 2})" text-anchor="middle">${escape(unit)}</text>`,
        `<rect x="${margin.left}" y="${top + margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    );
    if (goal) {
        out.push(
            `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y(goal.value)}" y2="${y(goal.value)}" stroke="#c0392b" stroke-dasharray="6 4"/>`,
            `<text x="${margin.left + plotW + 8}" y="${y(goal.value) + 4}" font-size="12" fill="#c0392b">${escape(goal.label)}</text>`,
        );
    }
    lines.forEach((line, i) => {
        const pts = line.values.filter((p) => Number.isFinite(p.v)).map((p) => `${x(p.t)},${y(p.v)}`);
        out.push(
            `<polyline points="${pts.join(' ')}" fill="none" stroke="${line.colour}" stroke-width="2"/>`,
            `<line x1="${margin.left + plotW + 8}" x2="${margin.left + plotW + 28}" y1="${top + margin.top + 14 + i * 20}" y2="${top + margin.top + 14 + i * 20}" stroke="${line.colour}" stroke-width="3"/>`,
            `<text x="${margin.left + plotW + 34}" y="${top + margin.top + 18 + i * 20}" font-size="12">${escape(line.label)}</text>`,
        );
    });
    return out.join('\n');
}

/** The chart as an SVG document: events per second above, latency percentiles below, on one time axis. */
export function burstChartSvg(series: BurstSeries, caption: string): string {
    const mid = (p: { t: number }) => p.t + series.bucketMs / 2000;
    const seconds = series.points.length * (series.bucketMs / 1000);
    const height = 2 * panelHeight + 40;
    return [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, sans-serif" fill="#222">`,
        `<rect width="${width}" height="${height}" fill="#fff"/>`,
        panel(
            0,
            `Burst: events handled per second (${series.bucketMs} ms intervals)`,
            'events / s',
            seconds,
            [
                {
                    label: 'events / s',
                    colour: '#2c6fbb',
                    values: series.points.map((p) => ({ t: mid(p), v: p.eventsPerSecond })),
                },
            ],
            { value: 500, label: 'goal 500/s' },
        ),
        panel(
            panelHeight,
            `Latency per interval (overall p50 ${Math.round(series.p50)} ms, p95 ${Math.round(series.p95)} ms, p99 ${Math.round(series.p99)} ms)`,
            'ms',
            seconds,
            [
                { label: 'p50', colour: '#27ae60', values: series.points.map((p) => ({ t: mid(p), v: p.p50 })) },
                { label: 'p95', colour: '#e67e22', values: series.points.map((p) => ({ t: mid(p), v: p.p95 })) },
                { label: 'p99', colour: '#c0392b', values: series.points.map((p) => ({ t: mid(p), v: p.p99 })) },
            ],
        ),
        `<text x="${margin.left}" y="${height - 12}" font-size="12" fill="#555">${escape(caption)}</text>`,
        '</svg>',
    ].join('\n');
}

/**
 * Renders the SVG to a PNG with Chromium. Resolves with the file written, or with the reason it was skipped (no
 * Chromium): the chart is the only thing skipped then, never the figures.
 */
export async function writeBurstChart(
    svg: string,
    file: string,
    chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
): Promise<{ written: string } | { skipped: string }> {
    if (!existsSync(chromiumPath)) {
        return {
            skipped:
                `Chromium is not installed at ${chromiumPath} (Debian: apt-get install -y --no-install-recommends ` +
                'chromium, or set CHROMIUM_PATH): the burst chart is skipped, the figures are not',
        };
    }
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
        executablePath: chromiumPath,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
        const size = /width="(\d+)" height="(\d+)"/.exec(svg);
        const page = await browser.newPage({
            viewport: { width: Number(size?.[1] ?? width), height: Number(size?.[2] ?? 540) },
            deviceScaleFactor: 1,
        });
        // Everything is inline; the page must not reach out.
        await page.route('**/*', (route) => route.abort());
        await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
        const png = await page.locator('svg').screenshot();
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, png);
        return { written: file };
    } finally {
        await browser.close();
    }
}
