package dashboards

import (
	"fmt"
	"math"
	"strings"

	"github.com/siphon-otel/siphon-otel/internal/mediaq"
)

// Selectors shared by the panels. SIPhon's own series are per scrape
// target (job, instance); the sipkpi series carry the node dimension.
const (
	nodeSel = `job=~"$job",instance=~"$instance"`
	kpiSel  = `node=~"$node"`
	// the sipkpi media series carry node, codec and direction (no transport)
	mediaSel = `node=~"$node",media_codec=~"$codec"`
	callSel  = `node=~"$node",transport=~"$transport"`
	colSel   = `job=~"$job",instance=~"$instance"`
)

// homerLink opens Homer on the dashboard's time range; exemplars open it on
// one call (see provisioning/datasource.yaml).
var homerLink = Link{Title: "Homer: calls in this time range", URL: "${homer_url}/?from=${__from}&to=${__to}#dashboard"}

// traceLink opens Jaeger's search for the call traces of the dashboard's
// time range (its times are µs); an exemplar opens one call's trace.
var traceLink = Link{Title: "Jaeger: call traces in this time range",
	URL: "${jaeger_url}/search?service=siphon&operation=SIP%20call&start=${__from}000&end=${__to}000&limit=100"}

// callLinks are the links of a call panel: its calls in Homer and as traces.
var callLinks = []Link{homerLink, traceLink}

var (
	varJob      = Variable{Name: "job", Label: "Job", Query: "label_values(siphon_uptime_seconds, job)", Multi: true}
	varInstance = Variable{Name: "instance", Label: "Instance", Query: `label_values(siphon_uptime_seconds{job=~"$job"}, instance)`, Multi: true}
	varNode     = Variable{Name: "node", Label: "Node (KPIs)", Query: "label_values(sip_calls_total, node)", Multi: true}
	varHomer    = Variable{Name: "homer_url", Label: "Homer URL", Textbox: "http://127.0.0.1:9080"}
	varJaeger   = Variable{Name: "jaeger_url", Label: "Jaeger URL", Textbox: "http://127.0.0.1:16686"}
)

func q(expr, legend string) Query { return Query{Expr: expr, Legend: legend} }

// qx is a query whose panel shows exemplars (links to the call's trace, and
// to the call in Homer).
func qx(expr, legend string) Query { return Query{Expr: expr, Legend: legend, Exemplars: true} }

func ts(title, unit, desc string, qs ...Query) Panel {
	return Panel{Type: "timeseries", Title: title, Unit: unit, Description: desc, Queries: qs}
}

func stat(title, unit, desc string, expr string) Panel {
	return Panel{Type: "stat", Title: title, Unit: unit, Description: desc, Queries: []Query{{Expr: expr, Instant: true}}}
}

// sel substitutes the selector into a query template written with {S}.
func sel(tmpl, s string) string { return strings.ReplaceAll(tmpl, "{S}", s) }

// ratio is sum(num)/sum(den) with a 0 numerator when it has no series.
func ratio(num, den string) string {
	return "(sum(" + num + ") or vector(0)) / sum(" + den + ")"
}

// ratioBy is ratio per group of the by labels: a group with no numerator
// series records 0, not nothing.
func ratioBy(by, num, den string) string {
	s := "sum by (" + by + ") "
	return "(" + s + "(" + num + ") or " + s + "(" + den + ") * 0) / " + s + "(" + den + ")"
}

// mosColors colour a MOS by mediaq's quality classes (ClassOf): bad, poor,
// fair, good; rounded to 3 decimals for the JSON.
func mosColors(p Panel) Panel {
	r := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	return withColors(p, "red", Threshold{r(mediaq.MOSPoor), "orange"}, Threshold{r(mediaq.MOSFair), "yellow"},
		Threshold{r(mediaq.MOSGood), "green"})
}

// All returns every dashboard, keyed by file name.
func All() map[string]Dashboard {
	return map[string]Dashboard{
		"siphon-fleet-overview.json":   fleet(),
		"siphon-call-quality.json":     callQuality(),
		"siphon-node.json":             node(),
		"otelcol-siphon-pipeline.json": pipeline(),
	}
}

func fleet() Dashboard {
	low := []Threshold{{Value: 0.5, Color: "orange"}, {Value: 0.9, Color: "red"}}
	return Dashboard{
		UID: "siphon-fleet", Title: "SIPhon fleet overview", Tags: []string{"siphon", "sip"},
		Description: "Every SIPhon node (or sipproxy) at a glance: up, calls, dialogs, registrations, handler pool, memory.",
		Variables:   []Variable{varJob, varInstance, varNode, varHomer},
		Links:       []Link{homerLink},
		Rows: []Row{
			{Title: "Fleet", Panels: []Panel{
				withColors(stat("Nodes up", "none", "Scrape targets answering.", sel(`count(up{{S}} == 1) or vector(0)`, nodeSel)), "red", Threshold{1, "green"}),
				withColors(stat("Nodes down", "none", "Scrape targets not answering.", sel(`count(up{{S}} == 0) or vector(0)`, nodeSel)), "green", Threshold{1, "red"}),
				stat("Calls/s", "reqps", "Call attempts ending per second, from CDRs (sipkpi).", sel(`sum(node:sip_calls:rate5m{{S}}) or vector(0)`, kpiSel)),
				withColors(stat("ASR", "percentunit", "Answered / attempts over the last 5 minutes, from CDRs.",
					ratio(sel(`node:sip_calls_answered:rate5m{{S}}`, kpiSel), sel(`node:sip_calls:rate5m{{S}}`, kpiSel))), "red", Threshold{0.3, "orange"}, Threshold{0.45, "green"}),
				stat("Active dialogs", "none", "siphon_dialogs_active summed over the selected nodes.", sel(`sum(siphon_dialogs_active{{S}})`, nodeSel)),
				stat("Registrations", "none", "Registered contacts (AoR bindings) summed over the selected nodes.", sel(`sum(siphon_registrations_active{{S}})`, nodeSel)),
			}},
			{Title: "Nodes", Panels: []Panel{{
				Type: "table", Title: "Nodes", Width: 24, Height: 9,
				Description: "One row per node. INVITE/s is what the node counts itself (SIPhon 1.6 leaves it at 0; the KPI rows use CDRs). Pool saturation = inflight / pool_max.",
				Queries: []Query{
					{Expr: sel(`up{{S}}`, nodeSel), Instant: true},
					{Expr: sel(`instance:siphon_invites:rate5m{{S}}`, nodeSel), Instant: true},
					{Expr: sel(`siphon_dialogs_active{{S}}`, nodeSel), Instant: true},
					{Expr: sel(`siphon_registrations_active{{S}}`, nodeSel), Instant: true},
					{Expr: sel(`siphon_pyexec_inflight{{S}} / siphon_pyexec_pool_max{{S}}`, nodeSel), Instant: true},
					{Expr: sel(`rate(siphon_pyexec_jobs_shed_total{{S}}[5m])`, nodeSel), Instant: true},
					{Expr: sel(`siphon_memory_allocated_bytes{{S}}`, nodeSel), Instant: true},
				},
				Columns: map[string]string{"Value #A": "Up", "Value #B": "INVITE/s", "Value #C": "Dialogs",
					"Value #D": "Registrations", "Value #E": "Pool saturation", "Value #F": "Shed jobs/s", "Value #G": "Allocated memory"},
			}}},
			{Title: "Trends", Panels: []Panel{
				{Type: "timeseries", Title: "Calls/s by node (CDRs)", Unit: "reqps", Links: []Link{homerLink},
					Description: "Call attempts ending per second, per node, from the sipkpi connector.",
					Queries:     []Query{qx(sel(`node:sip_calls:rate5m{{S}}`, kpiSel), "{{node}}")}},
				ts("INVITE/s by instance (node counters)", "reqps", "INVITEs the node counted itself.",
					q(sel(`instance:siphon_invites:rate5m{{S}}`, nodeSel), "{{instance}}")),
				ts("Active dialogs", "none", "Established calls per node.", q(sel(`siphon_dialogs_active{{S}}`, nodeSel), "{{instance}}")),
				ts("Registrations", "none", "Registered contacts per node.", q(sel(`siphon_registrations_active{{S}}`, nodeSel), "{{instance}}")),
				{Type: "timeseries", Title: "Handler pool saturation", Unit: "percentunit", Min: f(0), Max: f(1), Thresholds: low,
					Description: "Busy handler workers over the pool ceiling; 100% with shed jobs means requests are dropped.",
					Queries:     []Query{q(sel(`siphon_pyexec_inflight{{S}} / siphon_pyexec_pool_max{{S}}`, nodeSel), "{{instance}}")}},
				ts("Shed jobs/s", "ops", "Handler jobs dropped because the pool and its queue were full.",
					q(sel(`rate(siphon_pyexec_jobs_shed_total{{S}}[5m])`, nodeSel), "{{instance}}")),
				ts("Allocated memory", "bytes", "siphon_memory_allocated_bytes: the leak signal (growth at a flat call rate).",
					q(sel(`siphon_memory_allocated_bytes{{S}}`, nodeSel), "{{instance}}")),
				ts("RTPEngines up / configured", "none", "Healthy media engines (NG ping) against the configured count.",
					q(sel(`siphon_rtpengine_instances_up{{S}}`, nodeSel), "{{instance}} up"),
					q(sel(`siphon_rtpengine_instances_total{{S}}`, nodeSel), "{{instance}} configured")),
			}},
		},
	}
}

// narrow makes a panel a quarter of the width.
func narrow(p Panel) Panel {
	p.Width = 6
	return p
}

func withColors(p Panel, base string, th ...Threshold) Panel {
	p.BaseColor, p.Thresholds = base, th
	return p
}

func callQuality() Dashboard {
	varTransport := Variable{Name: "transport", Label: "Transport", Query: `label_values(sip_calls_total{node=~"$node"}, transport)`, Multi: true}
	calls := sel(`rate(sip_calls_total{{S}}[5m])`, callSel)
	callsWhere := func(m string) string { return sel(`rate(sip_calls_total{{S},`+m+`}[5m])`, callSel) }
	notRedirected := `(sum(` + calls + `) - (sum(` + callsWhere(`sip_response_status_code=~"3.."`) + `) or vector(0)))`
	kpi := func(title, desc, expr string, warn, good float64) Panel {
		return withColors(stat(title, "percentunit", desc, expr), "red", Threshold{warn, "orange"}, Threshold{good, "green"})
	}
	varCodec := Variable{Name: "codec", Label: "Codec (media)", Query: `label_values(sip_media_streams_total{node=~"$node"}, media_codec)`, Multi: true}
	byNode := func(title, unit, desc, rec string) Panel {
		return Panel{Type: "timeseries", Title: title, Unit: unit, Description: desc, Links: callLinks,
			Queries: []Query{qx(sel(rec+`{{S}}`, kpiSel), "{{node}}")}}
	}
	return Dashboard{
		UID: "siphon-calls", Title: "SIPhon call quality", Tags: []string{"siphon", "sip", "kpi"},
		Description: "Call KPIs from CDRs and HEP (sipkpi connector): ASR, NER, SER, SEER, ISA, SCR, ACD, PDD, codes, who hung up; media quality (MOS, jitter, loss, RTT) from RTCP and quality reports. Exemplars open the call's trace (Jaeger, Tempo) and, by remote write, the call in Homer.",
		Variables:   []Variable{varNode, varTransport, varCodec, varHomer, varJaeger},
		Links:       callLinks,
		Rows: []Row{
			{Title: "KPIs (selected nodes and transports, last 5 minutes)", Panels: []Panel{
				kpi("ASR", "Answer-seizure ratio (ITU-T E.411): answered / attempts.",
					ratio(callsWhere(`sip_call_result="answered"`), calls), 0.3, 0.45),
				kpi("NER", "Network effectiveness ratio (E.411): answered, busy, no answer, rejected or abandoned / attempts.",
					ratio(callsWhere(`sip_call_result=~"answered|busy|no_answer|rejected|cancelled"`), calls), 0.9, 0.97),
				kpi("SER", "Session establishment ratio (RFC 6076): 2xx / (attempts - 3xx).",
					"(sum("+callsWhere(`sip_response_status_code=~"2.."`)+") or vector(0)) / "+notRedirected, 0.3, 0.45),
				kpi("SEER", "Session establishment effectiveness ratio (RFC 6076): 2xx, 480, 486, 600, 603 / (attempts - 3xx).",
					"(sum("+callsWhere(`sip_response_status_code=~"2..|480|486|600|603"`)+") or vector(0)) / "+notRedirected, 0.9, 0.97),
				withColors(stat("ISA", "percentunit", "Ineffective session attempts (RFC 6076): 408, 500, 503, 504 / attempts.",
					ratio(callsWhere(`sip_response_status_code=~"408|500|503|504"`), calls)), "green", Threshold{0.02, "orange"}, Threshold{0.05, "red"}),
				kpi("SCR", "Session completion ratio (RFC 6076): answered calls ended by a BYE / attempts.",
					ratio(callsWhere(`sip_call_result="answered",sip_call_disconnect_initiator=~"caller|callee"`), calls), 0.3, 0.45),
				stat("ACD", "s", "Average duration of the answered calls that ended.",
					sel(`sum(rate(sip_call_duration_seconds_sum{{S}}[5m])) / sum(rate(sip_call_duration_seconds_count{{S}}[5m]))`, callSel)),
				withColors(stat("PDD p95", "s", "95th percentile of post-dial delay (INVITE to first 18x or final), from HEP.",
					sel(`histogram_quantile(0.95, sum by (le) (rate(sip_call_post_dial_delay_seconds_bucket{{S}}[5m])))`, callSel)),
					"green", Threshold{3, "orange"}, Threshold{5, "red"}),
				stat("PDD p50", "s", "Median post-dial delay, from HEP.",
					sel(`histogram_quantile(0.5, sum by (le) (rate(sip_call_post_dial_delay_seconds_bucket{{S}}[5m])))`, callSel)),
				stat("Setup p95 (CDR)", "s", "95th percentile of INVITE to answer or final response, from CDR timestamps (fleets without HEP).",
					sel(`histogram_quantile(0.95, sum by (le) (rate(sip_call_setup_duration_seconds_bucket{{S}}[5m])))`, callSel)),
				stat("Calls/s", "reqps", "Call attempts ending per second.", "sum("+calls+") or vector(0)"),
				stat("Answered calls/s", "reqps", "Answered calls ending per second.", "sum("+callsWhere(`sip_call_result="answered"`)+") or vector(0)"),
			}},
			{Title: "Per node", Panels: []Panel{
				byNode("ASR by node", "percentunit", "node:sip_asr:ratio_rate5m", "node:sip_asr:ratio_rate5m"),
				byNode("NER by node", "percentunit", "node:sip_ner:ratio_rate5m", "node:sip_ner:ratio_rate5m"),
				byNode("SER by node", "percentunit", "node:sip_ser:ratio_rate5m", "node:sip_ser:ratio_rate5m"),
				byNode("SEER by node", "percentunit", "node:sip_seer:ratio_rate5m", "node:sip_seer:ratio_rate5m"),
				byNode("ISA by node", "percentunit", "node:sip_isa:ratio_rate5m", "node:sip_isa:ratio_rate5m"),
				byNode("SCR by node", "percentunit", "node:sip_scr:ratio_rate5m", "node:sip_scr:ratio_rate5m"),
				byNode("ACD by node", "s", "node:sip_acd_seconds:mean5m", "node:sip_acd_seconds:mean5m"),
				{Type: "timeseries", Title: "PDD by node (p50, p95)", Unit: "s", Links: callLinks,
					Description: "Post-dial delay quantiles per node, from HEP; exemplars are the slowest calls of each bucket.",
					Queries: []Query{qx(sel(`node:sip_pdd_seconds:p50_5m{{S}}`, kpiSel), "{{node}} p50"),
						qx(sel(`node:sip_pdd_seconds:p95_5m{{S}}`, kpiSel), "{{node}} p95")}},
				byNode("Setup time p95 by node (CDR)", "s", "node:sip_call_setup_seconds:p95_5m", "node:sip_call_setup_seconds:p95_5m"),
				byNode("Calls/s by node", "reqps", "node:sip_calls:rate5m", "node:sip_calls:rate5m"),
			}},
			{Title: "Codes and outcomes", Panels: []Panel{
				{Type: "timeseries", Title: "Final response codes", Unit: "reqps", Stacked: true, Links: callLinks,
					Description: "Calls per second by final response code; exemplars lead to a call with that code.",
					Queries:     []Query{qx(`sum by (sip_response_status_code) (`+calls+`)`, "{{sip_response_status_code}}")}},
				{Type: "timeseries", Title: "Call results", Unit: "reqps", Stacked: true, Links: callLinks,
					Description: "answered, busy (486/600), no_answer (480), rejected (603), cancelled (487), redirected (3xx), failed (the rest).",
					Queries:     []Query{qx(`sum by (sip_call_result) (`+calls+`)`, "{{sip_call_result}}")}},
				{Type: "timeseries", Title: "Who ended answered calls", Unit: "reqps", Stacked: true, Links: callLinks,
					Description: "caller / callee (BYE), timeout (session timer, no ACK), error.",
					Queries:     []Query{qx(`sum by (sip_call_disconnect_initiator) (`+callsWhere(`sip_call_result="answered"`)+`)`, "{{sip_call_disconnect_initiator}}")}},
				ts("ASR by transport", "percentunit", "Answered / attempts per transport.",
					q(`sum by (transport) (`+callsWhere(`sip_call_result="answered"`)+`) / sum by (transport) (`+calls+`)`, "{{transport}}")),
				ts("ASR by trunk", "percentunit", "Needs a `trunk` dimension in the sipkpi config (for example from the CDR's extra field cdr.extra.trunk).",
					q(`sum by (trunk) (`+callsWhere(`sip_call_result="answered"`)+`) / sum by (trunk) (`+calls+`)`, "{{trunk}}")),
				ts("Call duration distribution", "reqps", "Answered calls ending per second, by duration bucket (upper bound).",
					q(sel(`sum by (le) (rate(sip_call_duration_seconds_bucket{{S}}[5m]))`, callSel), "<= {{le}} s")),
			}},
			mediaRow(),
			{Title: "Transactions (HEP)", Panels: []Panel{
				ts("Requests by method", "reqps", "New SIP transactions per second, per hop (retransmissions excluded).",
					q(sel(`sum by (sip_request_method) (rate(sip_requests_total{{S}}[5m]))`, kpiSel), "{{sip_request_method}}")),
				ts("Retransmissions", "reqps", "Retransmitted requests and responses: loss or a slow next hop.",
					q(sel(`sum by (sip_message_type, sip_request_method) (rate(sip_retransmissions_total{{S}}[5m]))`, kpiSel), "{{sip_message_type}} {{sip_request_method}}")),
				ts("REGISTER outcomes", "reqps", "REGISTER transactions by final code (401/407 are normal challenges; none = no answer).",
					q(sel(`sum by (sip_response_status_code) (rate(sip_transactions_total{{S},sip_request_method="REGISTER"}[5m]))`, kpiSel), "{{sip_response_status_code}}")),
				ts("REGISTER failure ratio", "percentunit", "node:sip_register_failure:ratio_rate5m",
					q(sel(`node:sip_register_failure:ratio_rate5m{{S}}`, kpiSel), "{{node}}")),
				{Type: "timeseries", Title: "Scanner activity", Unit: "reqps", Links: callLinks,
					Description: "Requests from sources flagged as SIP scanners (known User-Agents, OPTIONS/REGISTER floods); exemplars lead to their traces and to them in Homer.",
					Queries:     []Query{qx(sel(`sum by (node, sip_scanner_reason) (rate(sip_scanner_requests_total{{S}}[5m]))`, kpiSel), "{{node}} {{sip_scanner_reason}}")}},
				ts("Registration events (CDR)", "ops", "REGISTER CDRs by event (registered, refreshed, deregistered, expired).",
					q(sel(`sum by (sip_registration_event) (rate(sip_registration_events_total{{S}}[5m]))`, kpiSel), "{{sip_registration_event}}")),
			}},
		},
	}
}

// mediaRow is the call-quality dashboard's media row: sipkpi's per-stream
// media series (one observation per RTP stream at its end), filtered by
// node and codec.
func mediaRow() Row {
	streams := func(m string) string { return sel(`rate(sip_media_streams_total{{S},`+m+`}[5m])`, mediaSel) }
	// Streams of class unknown had no figure to rate: they count in no share.
	rated, poor := streams(`media_quality_class!="unknown"`), streams(`media_quality_class=~"poor|bad"`)
	quantile := func(q, by, metric string) string {
		return sel(`histogram_quantile(`+q+`, sum by (`+by+`le) (rate(`+metric+`_bucket{{S}}[5m])))`, mediaSel)
	}
	poorColors := func(p Panel) Panel { return withColors(p, "green", Threshold{0.02, "orange"}, Threshold{0.05, "red"}) }
	// figure is one of jitter, loss, RTT: percentiles per node or per codec.
	type figure struct{ name, metric, unit, what string }
	figures := []figure{
		{"Jitter", "sip_media_jitter_seconds", "s", "interarrival jitter (RFC 3550) the receiver reported"},
		{"Packet loss", "sip_media_packet_loss_ratio", "percentunit", "share of the stream's packets lost"},
		{"Round-trip time", "sip_media_rtt_seconds", "s", "RTCP round-trip time (LSR/DLSR)"},
	}
	withLinks := func(p Panel) Panel { p.Links = callLinks; return p }
	panels := []Panel{
		poorColors(stat("Poor streams", "percentunit",
			"Media streams of class poor or bad (MOS below mediaq's fair bound, G.107 R < 70) / rated streams, over the last 5 minutes. SIPMediaPoorStreamsHigh reads 15 minutes.",
			ratio(poor, rated))),
		mosColors(stat("MOS p5", "none", "The MOS 95% of the streams of the last 5 minutes reached (5th percentile of sip_media_mos).",
			quantile("0.05", "", "sip_media_mos"))),
		mosColors(stat("MOS p50", "none", "Median MOS of the streams of the last 5 minutes.", quantile("0.5", "", "sip_media_mos"))),
		stat("Jitter p95", "s", "95th percentile of the streams' interarrival jitter.", quantile("0.95", "", "sip_media_jitter_seconds")),
		stat("Packet loss p95", "percentunit", "95th percentile of the streams' packet loss ratio.", quantile("0.95", "", "sip_media_packet_loss_ratio")),
		stat("Rated streams/s", "ops", "Media streams with a MOS ending per second.", "sum("+rated+") or vector(0)"),
		withLinks(Panel{Type: "heatmap", Title: "MOS distribution", Unit: "none", Interval: "5m",
			Description: "Streams per MOS bucket (upper bound) in each 5 minutes; bucket bounds are G.107's class bounds. Exemplars open the call of a stream (low cells: the bad ones).",
			Queries:     []Query{qx(sel(`sum by (le) (increase(sip_media_mos_bucket{{S}}[5m]))`, mediaSel), "{{le}}")}}),
		{Type: "timeseries", Title: "Streams by quality class", Unit: "ops", Stacked: true, Links: callLinks,
			Description: fmt.Sprintf("Media streams ending per second by mediaq class: good (MOS >= %.2f), fair (>= %.2f), poor (>= %.2f), bad, unknown (no figure to rate). Exemplars on poor and bad lead to those calls.",
				mediaq.MOSGood, mediaq.MOSFair, mediaq.MOSPoor),
			Queries: []Query{qx(sel(`sum by (media_quality_class) (rate(sip_media_streams_total{{S}}[5m]))`, mediaSel), "{{media_quality_class}}")}},
		poorColors(Panel{Type: "timeseries", Title: "Poor streams by node", Unit: "percentunit", Width: 8,
			Description: "Share of the rated streams that were poor or bad, per node (the streams by class panel has the exemplars).",
			Queries:     []Query{q(ratioBy("node", poor, rated), "{{node}}")}}),
		mosColors(Panel{Type: "timeseries", Title: "MOS by node (p5, p50)", Unit: "none", Width: 8, Links: callLinks,
			Description: "MOS quantiles per node; exemplars are streams of each bucket.",
			Queries: []Query{qx(quantile("0.05", "node, ", "sip_media_mos"), "{{node}} p5"),
				qx(quantile("0.5", "node, ", "sip_media_mos"), "{{node}} p50")}}),
		mosColors(Panel{Type: "timeseries", Title: "MOS p5 by codec and direction", Unit: "none", Width: 8, Links: callLinks,
			Description: "Which codec, and which way (caller_to_callee: the media the caller sent), sounds worst.",
			Queries:     []Query{qx(quantile("0.05", "media_codec, media_direction, ", "sip_media_mos"), "{{media_codec}} {{media_direction}}")}}),
	}
	for _, fg := range figures {
		panels = append(panels, Panel{Type: "timeseries", Title: fg.name + " by node (p50, p95)", Unit: fg.unit, Width: 8, Links: callLinks,
			Description: "Per node: " + fg.what + ", per stream at its end.",
			Queries: []Query{qx(quantile("0.5", "node, ", fg.metric), "{{node}} p50"),
				qx(quantile("0.95", "node, ", fg.metric), "{{node}} p95")}})
	}
	for _, fg := range figures {
		panels = append(panels, Panel{Type: "timeseries", Title: fg.name + " p95 by codec", Unit: fg.unit, Width: 8, Links: callLinks,
			Description: "Per codec (mediaq.CodecFamily; unknown when no SDP was seen): " + fg.what + ".",
			Queries:     []Query{qx(quantile("0.95", "media_codec, ", fg.metric), "{{media_codec}}")}})
	}
	return Row{Title: "Media quality (selected nodes and codecs, last 5 minutes)", Panels: panels}
}

func node() Dashboard {
	g := func(title, unit, desc string, metrics ...string) Panel {
		p := ts(title, unit, desc)
		for _, m := range metrics {
			p.Queries = append(p.Queries, q(m+`{`+nodeSel+`}`, strings.TrimPrefix(m, "siphon_")+" {{instance}}"))
		}
		return p
	}
	r := func(title, unit, desc string, metrics ...string) Panel {
		p := ts(title, unit, desc)
		for _, m := range metrics {
			p.Queries = append(p.Queries, q(`rate(`+m+`{`+nodeSel+`}[5m])`, strings.TrimPrefix(strings.TrimSuffix(m, "_total"), "siphon_")+" {{instance}}"))
		}
		return p
	}
	by := func(title, unit, desc, expr, legend string) Panel {
		return ts(title, unit, desc, q(sel(expr, nodeSel), legend))
	}
	return Dashboard{
		UID: "siphon-node", Title: "SIPhon node deep dive", Tags: []string{"siphon", "sip"},
		Description: "Every series a SIPhon node exports (and sipproxy's own additions), for one or a few nodes.",
		Variables:   []Variable{varJob, varInstance, varNode, varHomer},
		Links:       []Link{homerLink},
		Rows: []Row{
			{Title: "SIP", Panels: []Panel{
				by("Requests by method", "reqps", "siphon_requests_total (0 on SIPhon 1.6, which registers but never updates it).",
					`sum by (instance, method) (rate(siphon_requests_total{{S}}[5m]))`, "{{instance}} {{method}}"),
				by("Responses by code", "reqps", "siphon_responses_total.", `sum by (instance, code) (rate(siphon_responses_total{{S}}[5m]))`, "{{instance}} {{code}}"),
				g("Transactions, dialogs, registrations", "none", "Active transactions and dialogs; registered contacts.",
					"siphon_transactions_active", "siphon_dialogs_active", "siphon_registrations_active"),
				by("Connections by transport", "none", "Open connections per transport.", `siphon_connections_active{{S}}`, "{{instance}} {{transport}}"),
				by("Request processing p95", "s", "siphon_request_duration_seconds, 95th percentile per method.",
					`histogram_quantile(0.95, sum by (instance, method, le) (rate(siphon_request_duration_seconds_bucket{{S}}[5m])))`, "{{instance}} {{method}}"),
				by("Transaction duration p95", "s", "siphon_transaction_duration_seconds, 95th percentile per method and type.",
					`histogram_quantile(0.95, sum by (instance, method, type, le) (rate(siphon_transaction_duration_seconds_bucket{{S}}[5m])))`, "{{instance}} {{method}} {{type}}"),
				g("State that must drain", "none", "Return to about 0 when traffic stops: pending UAC requests, INVITEs in their 2xx/ACK window, open CDRs, SUBSCRIBE dialogs, Rf/Ro sessions.",
					"siphon_uac_pending_requests", "siphon_proxy_dialog_sessions", "siphon_cdr_sessions", "siphon_subscribe_dialogs", "siphon_rf_sessions", "siphon_ro_sessions"),
				g("Uptime", "s", "Seconds since start.", "siphon_uptime_seconds"),
			}},
			{Title: "Handler pool", Panels: []Panel{
				g("Pool", "none", "Workers (size, ceiling), busy workers, queued jobs.",
					"siphon_pyexec_pool_size", "siphon_pyexec_pool_max", "siphon_pyexec_inflight", "siphon_pyexec_queue_depth"),
				r("Jobs", "ops", "Completed and shed handler jobs per second.", "siphon_pyexec_jobs_completed_total", "siphon_pyexec_jobs_shed_total"),
				by("Script executions by handler", "ops", "siphon_script_executions_total.",
					`sum by (instance, handler) (rate(siphon_script_executions_total{{S}}[5m]))`, "{{instance}} {{handler}}"),
				r("Script errors and HA1 cache hits", "ops", "Script exceptions; digest HA1 cache hits.", "siphon_script_errors_total", "siphon_auth_ha1_cache_hits_total"),
			}},
			{Title: "Memory", Panels: []Panel{
				g("Allocator", "bytes", "jemalloc view: allocated is the leak signal.",
					"siphon_memory_allocated_bytes", "siphon_memory_resident_bytes", "siphon_memory_active_bytes", "siphon_memory_retained_bytes", "siphon_memory_mapped_bytes"),
				g("glibc", "bytes", "glibc malloc view (Python and native extensions).",
					"siphon_glibc_system_bytes", "siphon_glibc_in_use_bytes", "siphon_glibc_free_bytes", "siphon_glibc_mmap_bytes"),
				g("Python blocks and glibc arenas", "none", "Allocated Python blocks; glibc arena count.", "siphon_python_allocated_blocks", "siphon_glibc_arena_count"),
			}},
			{Title: "Security", Panels: []Panel{
				g("Banned IPs", "none", "Sources currently banned.", "siphon_banned_ips"),
				r("Failures", "ops", "Digest auth, TLS handshake and credential failures per second.",
					"siphon_auth_failures_total", "siphon_handshake_failures_total", "siphon_credential_failures_total"),
				r("Malformed, scanners, rate limited", "ops", "Requests refused before routing.",
					"siphon_malformed_messages_total", "siphon_scanner_blocked_total", "siphon_rate_limited_total"),
				r("Firewall commands", "ops", "Ban commands dropped (queue full) or failed.", "siphon_firewall_commands_dropped_total", "siphon_firewall_command_failures_total"),
			}},
			{Title: "RTPEngine", Panels: []Panel{
				narrow(g("Instances", "none", "Healthy engines against the configured count.", "siphon_rtpengine_instances_up", "siphon_rtpengine_instances_total")),
				narrow(by("Per engine", "none", "1 = answers NG ping.", `siphon_rtpengine_instance_up{{S}}`, "{{instance}} {{address}}")),
				// What the engines' media sounded like (sipkpi, per node):
				// the call-quality dashboard's media row has the details
				// and the exemplars.
				narrow(mosColors(Panel{Type: "timeseries", Title: "Media MOS p5, p50 (sipkpi)", Unit: "none", Min: f(1), Max: f(4.5),
					Description: "MOS of the media streams that ended in the last 5 minutes, per KPI node (recording rules). Details and the calls: the media row of SIPhon call quality.",
					Queries: []Query{q(sel(`node:sip_media_mos:p5_5m{{S}}`, kpiSel), "{{node}} p5"),
						q(sel(`node:sip_media_mos:p50_5m{{S}}`, kpiSel), "{{node}} p50")}})),
				narrow(withColors(ts("Poor media streams (sipkpi)", "percentunit",
					"Share of the rated media streams of the last 5 minutes that were poor or bad (MOS below mediaq's fair bound), per KPI node.",
					q(sel(`node:sip_media_poor:ratio_rate5m{{S}}`, kpiSel), "{{node}}")), "green", Threshold{0.02, "orange"}, Threshold{0.05, "red"})),
			}},
			{Title: "IMS control plane", Panels: []Panel{
				g("Diameter peers and IPsec", "none", "Connected Diameter peers, IPsec SA pairs, Npcf app sessions.",
					"siphon_diameter_peers_connected", "siphon_ipsec_sa_pairs", "siphon_sbi_npcf_app_sessions_active"),
				r("Control plane failures", "ops", "Diameter watchdog failures, control-channel auth failures.",
					"siphon_diameter_watchdog_failures_total", "siphon_control_auth_failures_total"),
			}},
			{Title: "Telemetry senders (sipproxy)", Panels: []Panel{
				r("CDRs", "ops", "CDRs written by the node's backend and dropped (channel full, backend error).",
					"siphon_cdr_written_total", "siphon_cdr_dropped_total"),
				r("HEP", "ops", "HEP packets sent and dropped (queue full).", "siphon_hep_packets_sent_total", "siphon_hep_packets_dropped_total"),
			}},
		},
	}
}

func pipeline() Dashboard {
	varColJob := Variable{Name: "job", Label: "Job", Query: "label_values(otelcol_process_uptime, job)", Multi: true}
	varColInstance := Variable{Name: "instance", Label: "Instance", Query: `label_values(otelcol_process_uptime{job=~"$job"}, instance)`, Multi: true}
	by := func(title, unit, desc, expr, legend string) Panel {
		return ts(title, unit, desc, q(sel(expr, colSel), legend))
	}
	return Dashboard{
		UID: "siphon-pipeline", Title: "otelcol-siphon pipeline health", Tags: []string{"siphon", "otelcol"},
		Description: "The collector itself: what its receivers take, what they refuse or drop, queues and exporters, memory.",
		Variables:   []Variable{varColJob, varColInstance},
		Rows: []Row{
			{Title: "Receivers", Panels: []Panel{
				by("HEP packets received", "pps", "Packets read by the hep receiver, per transport.",
					`sum by (instance, transport) (rate(otelcol_hep_receiver_packets_received{{S}}[5m]))`, "{{instance}} {{transport}}"),
				by("HEP dropped and malformed", "pps", "Packets not delivered (by reason) and undecodable ones.",
					`sum by (instance, reason) (rate(otelcol_hep_receiver_packets_dropped{{S}}[5m])) or sum by (instance, reason) (rate(otelcol_hep_receiver_packets_malformed{{S}}[5m]))`, "{{instance}} {{reason}}"),
				by("Records accepted by receiver", "ops", "Log records each receiver handed to its pipeline.",
					`sum by (instance, receiver) (rate(otelcol_receiver_accepted_log_records{{S}}[5m]))`, "{{instance}} {{receiver}}"),
				by("Records refused by the pipeline", "ops", "Refused downstream (memory limiter): receivers push back or count a drop.",
					`sum by (instance, receiver) (rate(otelcol_receiver_refused_log_records{{S}}[5m]))`, "{{instance}} {{receiver}}"),
				by("CDRs dropped and malformed", "ops", "siphon_cdr receiver: dropped (by reason) and malformed records.",
					`sum by (instance, reason) (rate(otelcol_siphon_cdr_receiver_records_dropped{{S}}[5m])) or sum by (instance, reason) (rate(otelcol_siphon_cdr_receiver_records_malformed{{S}}[5m]))`, "{{instance}} {{reason}}"),
				by("Open connections", "none", "TCP/TLS connections of the hep and siphon_cdr receivers.",
					`sum by (instance, transport) (otelcol_hep_receiver_connections_active{{S}})`, "{{instance}} hep {{transport}}"),
			}},
			{Title: "KPIs (sipkpi)", Panels: []Panel{
				by("Records by outcome", "ops", "What the connector did with each record.",
					`sum by (instance, reason) (rate(otelcol_sipkpi_records{{S}}[5m]))`, "{{instance}} {{reason}}"),
				by("State entries", "none", "Transactions, call setups and scanner sources held (bounded).",
					`sum by (instance, state) (otelcol_sipkpi_state_entries{{S}})`, "{{instance}} {{state}}"),
				by("Evictions", "ops", "State removed by expiry or capacity; capacity evictions mean the bound is too small for the load.",
					`sum by (instance, state, reason) (rate(otelcol_sipkpi_state_evictions{{S}}[5m]))`, "{{instance}} {{state}} {{reason}}"),
				by("Invalid records and overflows", "ops", "Records missing a field a KPI needs, and measurements put in the overflow series.",
					`sum by (instance, reason) (rate(otelcol_sipkpi_records_invalid{{S}}[5m])) or sum by (instance) (rate(otelcol_sipkpi_dimension_overflows{{S}}[5m]))`, "{{instance}} {{reason}}"),
			}},
			{Title: "Exporters", Panels: []Panel{
				by("Sent log records", "ops", "Records each exporter delivered.",
					`sum by (instance, exporter) (rate(otelcol_exporter_sent_log_records{{S}}[5m]))`, "{{instance}} {{exporter}}"),
				by("Send failures", "ops", "Failed sends (retried from the queue).",
					`sum by (instance, exporter) (rate(otelcol_exporter_send_failed_log_records{{S}}[5m]))`, "{{instance}} {{exporter}}"),
				{Type: "timeseries", Title: "Queue fill", Unit: "percentunit", Min: f(0), Max: f(1),
					Thresholds:  []Threshold{{0.5, "orange"}, {0.8, "red"}},
					Description: "Sending queue size over capacity per exporter; at 100% new data is refused.",
					Queries:     []Query{q(sel(`max by (instance, exporter) (otelcol_exporter_queue_size{{S}} / otelcol_exporter_queue_capacity{{S}})`, colSel), "{{instance}} {{exporter}}")}},
				by("Enqueue refused", "ops", "Items refused because a queue was full.",
					`sum by (instance, exporter) (rate(otelcol_exporter_enqueue_failed_log_records{{S}}[5m]))`, "{{instance}} {{exporter}}"),
				by("Our exporters: written", "ops", "Homer packets, CDR file records, Kafka messages, syslog messages.",
					`sum by (instance) (rate(otelcol_homer_exporter_packets_sent{{S}}[5m])) or sum by (instance) (rate(otelcol_siphon_file_exporter_records_written{{S}}[5m])) or sum by (instance) (rate(otelcol_siphon_kafka_exporter_messages_produced{{S}}[5m])) or sum by (instance) (rate(otelcol_siphon_syslog_exporter_messages_sent{{S}}[5m]))`, "{{instance}}"),
				by("Our exporters: dropped", "ops", "Records dropped as permanent failures, by reason.",
					`sum by (instance, reason) (rate(otelcol_homer_exporter_records_dropped{{S}}[5m])) or sum by (instance, reason) (rate(otelcol_siphon_file_exporter_records_dropped{{S}}[5m])) or sum by (instance, reason) (rate(otelcol_siphon_kafka_exporter_records_dropped{{S}}[5m])) or sum by (instance, reason) (rate(otelcol_siphon_syslog_exporter_records_dropped{{S}}[5m]))`, "{{instance}} {{reason}}"),
			}},
			{Title: "Process", Panels: []Panel{
				by("Resident memory", "bytes", "RSS of the collector; the memory limiter refuses data near its limit.", `otelcol_process_memory_rss{{S}}`, "{{instance}}"),
				by("CPU", "percentunit", "CPU seconds per second.", `rate(otelcol_process_cpu_seconds{{S}}[5m])`, "{{instance}}"),
				by("Heap", "bytes", "Go heap in use.", `otelcol_process_runtime_heap_alloc_bytes{{S}}`, "{{instance}}"),
				by("Memory limiter refusals", "ops", "Items refused by memory_limiter.",
					`sum by (instance) (rate(otelcol_processor_memory_limiter_refused_log_records{{S}}[5m]))`, "{{instance}}"),
			}},
		},
	}
}
