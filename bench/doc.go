// Package bench holds the end-to-end benchmarks behind BENCHMARKS.md: HEP
// ingest through the hep receiver against a plain socket reader, and the
// CDR path through otelcol-siphon against the core OTLP receiver. Each
// benchmark measures its baseline in the same run and reports ratios,
// because these machines are shared and their absolute figures drift.
package bench
