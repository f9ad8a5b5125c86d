import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { MetricsView } from '../api/types.ts';

/*
 * The metrics chart, rendered on the server with no system library: Vega-Lite
 * compiles the spec, Vega draws it as SVG (no canvas needed for SVG), resvg
 * (prebuilt binaries) rasterizes it with the font bundled in assets/fonts, so
 * the text is the same on a bare machine with no fonts installed.
 */

/** The PNG's size in pixels: the chart drawn at 800×400 and rasterized at twice that, sharp on high-density screens. */
export const METRICS_CHART = { width: 1600, height: 800 } as const;
const DRAWN = { width: 800, height: 400 };

const FONT = 'DejaVu Sans';
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => fileURLToPath(new URL(`../../assets/fonts/${f}`, import.meta.url)));

const BARS = '#5b3cc4';
const LINE = '#e8710a';

/** The chart's Vega-Lite spec: weekly deployments as bars (left axis), their median lead time as a line (right axis). */
export function metricsChartSpec(m: MetricsView): TopLevelSpec {
  const hours = m.weeks.map((w) => (w.leadTimeMedianSeconds ?? 0) / 3600);
  const inDays = Math.max(0, ...hours) >= 48;
  const unit = inDays ? 'days' : 'hours';
  const values = m.weeks.map((w) => ({
    week: new Date(`${w.start}T00:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' }),
    deployments: w.deployments,
    lead: w.leadTimeMedianSeconds === null ? null : +(w.leadTimeMedianSeconds / (inDays ? 86400 : 3600)).toFixed(2),
  }));
  const x = {
    field: 'week',
    type: 'ordinal',
    sort: null,
    title: 'week starting (UTC)',
    axis: { labelAngle: 0 },
  } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: DRAWN.width,
    height: DRAWN.height,
    autosize: { type: 'fit', contains: 'padding' },
    padding: 16,
    background: 'white',
    title: {
      text: `${m.pipeline} · production · last ${m.days} days`,
      subtitle: `deployments per week (bars) and their median lead time for changes (line, ${unit})`,
      anchor: 'start',
    },
    config: {
      font: FONT,
      view: { stroke: null },
      axis: { labelFontSize: 12, titleFontSize: 12, gridColor: '#e6e6e6' },
      title: { fontSize: 18, subtitleFontSize: 12, subtitleColor: '#555' },
    },
    data: { values },
    layer: [
      {
        mark: { type: 'bar', color: BARS, cornerRadiusEnd: 3, width: { band: 0.6 } },
        encoding: {
          x,
          y: {
            field: 'deployments',
            type: 'quantitative',
            title: 'deployments',
            axis: { titleColor: BARS, tickMinStep: 1, format: 'd' },
          },
        },
      },
      {
        mark: { type: 'line', color: LINE, strokeWidth: 3, point: { filled: true, size: 70, color: LINE } },
        encoding: {
          x,
          y: {
            field: 'lead',
            type: 'quantitative',
            title: `median lead time (${unit})`,
            axis: { titleColor: LINE, orient: 'right', grid: false },
          },
        },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  };
}

/** The metrics chart as SVG text. */
export async function metricsChartSvg(m: MetricsView): Promise<string> {
  const view = new vega.View(vega.parse(compile(metricsChartSpec(m)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The metrics chart as a PNG of METRICS_CHART's size. */
export async function metricsChartPng(m: MetricsView): Promise<Buffer> {
  const svg = await metricsChartSvg(m);
  const png = new Resvg(svg, {
    fitTo: { mode: 'width', value: METRICS_CHART.width },
    font: { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: FONT },
    background: 'white',
  }).render();
  return png.asPng();
}
