package sipcallconnector

// The values of the connector's telemetry attributes. Each list is held to
// the attribute's enum in metadata.yaml by TestTelemetryValuesMatchMetadata;
// the code passes only these typed constants.

// outcome is what became of a record (sipcall_records).
type outcome string

const (
	outMessage        outcome = "message"
	outOutOfDialog    outcome = "out_of_dialog"
	outOutOfDialogOff outcome = "out_of_dialog_disabled"
	outMessageLate    outcome = "message_late"
	outSpanLimit      outcome = "span_limit"
	outMalformed      outcome = "malformed"
	outCDR            outcome = "cdr"
	outCDRLate        outcome = "cdr_late"
	outCDRDuplicate   outcome = "cdr_duplicate"
	outMediaReport    outcome = "media_report"
	outMediaUnusable  outcome = "media_unusable"
	outIgnored        outcome = "ignored"
)

var outcomes = []outcome{outMessage, outOutOfDialog, outOutOfDialogOff, outMessageLate, outSpanLimit,
	outMalformed, outCDR, outCDRLate, outCDRDuplicate, outMediaReport, outMediaUnusable, outIgnored}

// mediaOutcome is what became of a media report or stream on its root
// (sipcall_media_reports, sipcall_media_streams).
type mediaOutcome string

const (
	mediaAttached mediaOutcome = "attached"
	mediaDropped  mediaOutcome = "dropped"
	mediaLate     mediaOutcome = "late"
	mediaNoCall   mediaOutcome = "no_call"
)

var mediaOutcomes = []mediaOutcome{mediaAttached, mediaDropped, mediaLate, mediaNoCall}

// malformed is why a record could not be traced as it is
// (sipcall_records_malformed).
type malformed string

const (
	badNoCallID          malformed = "no_call_id"
	badNoCSeq            malformed = "no_cseq"
	badNotSIP            malformed = "not_request_or_response"
	badResponseNoRequest malformed = "response_without_request"
	badUnknownDialog     malformed = "unknown_dialog"
)

var malformedReasons = []malformed{badNoCallID, badNoCSeq, badNotSIP, badResponseNoRequest, badUnknownDialog}

// spanKind counts emitted spans (sipcall_spans).
type spanKind string

const (
	spanCall        spanKind = "call"
	spanLeg         spanKind = "leg"
	spanTransaction spanKind = "transaction"
	spanCDR         spanKind = "cdr"
)

var spanKinds = []spanKind{spanCall, spanLeg, spanTransaction, spanCDR}

// eviction is why a call ended early (sipcall_evictions); its root's
// status says it too.
type eviction string

const (
	evMaxCalls        eviction = "max_calls"
	evMaxOutOfDialog  eviction = "max_out_of_dialog_transactions"
	evMaxCallDuration eviction = "max_call_duration"
	evMaxSpans        eviction = "max_spans_per_call"
	evIdle            eviction = "idle_timeout"
	evShutdown        eviction = "shutdown"
	evMediaStreams    eviction = "media_max_streams"
	evMediaCalls      eviction = "media_max_calls"
)

var evictions = []eviction{evMaxCalls, evMaxOutOfDialog, evMaxCallDuration, evMaxSpans, evIdle, evShutdown, evMediaStreams, evMediaCalls}

// table is a bounded state table (sipcall_state_entries).
type table string

const (
	tableCalls        table = "calls"
	tableOutOfDialog  table = "out_of_dialog"
	tableTransactions table = "transactions"
	tableEnded        table = "ended"
	tableNodes        table = "nodes"
	tableMediaCalls   table = "media_calls"
	tableMediaStreams table = "media_streams"
)

var tables = []table{tableCalls, tableOutOfDialog, tableTransactions, tableEnded, tableNodes, tableMediaCalls, tableMediaStreams}

// hooks feed the connector's own telemetry; the tracer calls them.
type hooks struct {
	malformed          func(malformed)
	spans              func(spanKind, int64)
	evicted            func(eviction)
	entries            func(table, int64)
	cdrWithoutMessages func()
	mediaReports       func(mediaOutcome)
	mediaStreams       func(mediaOutcome)
}

func noHooks() hooks {
	return hooks{malformed: func(malformed) {}, spans: func(spanKind, int64) {}, evicted: func(eviction) {},
		entries: func(table, int64) {}, cdrWithoutMessages: func() {}, mediaReports: func(mediaOutcome) {},
		mediaStreams: func(mediaOutcome) {}}
}
