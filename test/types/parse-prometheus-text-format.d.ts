// The package ships no types: what the metrics test uses of it.
declare module 'parse-prometheus-text-format' {
  /** Prometheus text exposition → metric families; throws on text that is not the format. */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
