// One uPlot chart. uPlot draws on a canvas and takes columns of numbers, so a few thousand buckets
// redraw in a millisecond or two; the component only creates the plot and hands it new columns.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Line colours, in the order series take them (ten told apart: compare shows up to ten jobs). */
export const SERIES_COLORS: readonly string[] = [
  '#1c7ed6',
  '#e8590c',
  '#2f9e44',
  '#ae3ec9',
  '#f08c00',
  '#0c8599',
  '#c2255c',
  '#5c940d',
  '#364fc7',
  '#868e96',
];

export interface ChartSeries {
  label: string;
  values: ReadonlyArray<number | null>;
  color: string;
  /** A thin line without a legend value (the min/max of a bucket). */
  faint?: boolean;
}

export interface ChartProps {
  title: string;
  xLabel: string;
  x: ReadonlyArray<number>;
  series: readonly ChartSeries[];
  /** Fill between two series (indices into `series`): the min–max band of downsampled buckets. */
  band?: { upper: number; lower: number };
  /** A vertical marker at this x (the best epoch). */
  markerX?: number | undefined;
  format?: (value: number) => string;
  /** Drag-select on x: the range selected (the caller re-requests it at full resolution). */
  onZoom?: (min: number, max: number) => void;
  /** Double-click: back to the whole range. */
  onReset?: () => void;
  /** Called after each draw (the browser tests measure time to first draw). */
  onDrawn?: () => void;
  testId?: string;
}

const HEIGHT = 200;

function columns(props: ChartProps): uPlot.AlignedData {
  return [props.x as number[], ...props.series.map((s) => s.values as (number | null)[])];
}

export function Chart(props: ChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(props);
  latest.current = props;
  const shape = `${props.series.map((s) => s.label).join('|')}|${props.band ? 'band' : ''}`;

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height: HEIGHT,
      legend: { show: true },
      scales: { x: { time: false } },
      axes: [
        { label: props.xLabel, size: 40 },
        {
          size: 70,
          values: (_u, ticks) =>
            ticks.map((t) => (latest.current.format ? latest.current.format(t) : String(t))),
        },
      ],
      series: [
        { label: props.xLabel },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.faint ? 0.5 : 1.5,
          points: { show: props.x.length <= 60 },
          ...(s.faint && { value: () => '' }),
        })),
      ],
      ...(props.band && {
        bands: [{ series: [props.band.upper + 1, props.band.lower + 1], fill: 'rgba(60, 110, 200, 0.15)' }],
      }),
      hooks: {
        draw: [
          (u) => {
            const x = latest.current.markerX;
            if (x !== undefined) {
              const left = u.valToPos(x, 'x', true);
              const ctx = u.ctx;
              ctx.save();
              ctx.strokeStyle = '#d9480f';
              ctx.setLineDash([5, 4]);
              ctx.lineWidth = 2;
              ctx.beginPath();
              ctx.moveTo(left, u.bbox.top);
              ctx.lineTo(left, u.bbox.top + u.bbox.height);
              ctx.stroke();
              ctx.restore();
            }
            latest.current.onDrawn?.();
          },
        ],
        setSelect: [
          (u) => {
            if (u.select.width <= 0) return;
            const min = u.posToVal(u.select.left, 'x');
            const max = u.posToVal(u.select.left + u.select.width, 'x');
            latest.current.onZoom?.(min, max);
          },
        ],
      },
    };
    const created = new uPlot(options, columns(props), element);
    plot.current = created;
    const reset = () => latest.current.onReset?.();
    created.over.addEventListener('dblclick', reset);
    const resize = new ResizeObserver(() =>
      created.setSize({ width: Math.max(200, element.clientWidth), height: HEIGHT }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      created.destroy();
      plot.current = null;
    };
    // Recreated only when the series change; new data goes through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(columns(props));
  }, [props.x, props.series, props.markerX]);

  return (
    <figure class="chart" data-testid={props.testId}>
      <figcaption>{props.title}</figcaption>
      <div ref={container} />
    </figure>
  );
}
