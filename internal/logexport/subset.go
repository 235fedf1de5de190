// Subsets of a batch: what an exporter hands back for retry when only some
// records were sent, each record keeping its resource and scope.
package logexport

import "go.opentelemetry.io/collector/pdata/plog"

// From copies the records with index >= from, in iteration order.
func From(ld plog.Logs, from int) plog.Logs {
	return Pick(ld, func(i int) bool { return i >= from })
}

// Pick copies the records whose index (in iteration order) keep accepts.
func Pick(ld plog.Logs, keep func(i int) bool) plog.Logs {
	out := plog.NewLogs()
	idx := 0
	for _, rl := range ld.ResourceLogs().All() {
		var orl plog.ResourceLogs
		for _, sl := range rl.ScopeLogs().All() {
			var osl plog.ScopeLogs
			for _, lr := range sl.LogRecords().All() {
				if keep(idx) {
					if osl == (plog.ScopeLogs{}) {
						if orl == (plog.ResourceLogs{}) {
							orl = out.ResourceLogs().AppendEmpty()
							rl.Resource().CopyTo(orl.Resource())
							orl.SetSchemaUrl(rl.SchemaUrl())
						}
						osl = orl.ScopeLogs().AppendEmpty()
						sl.Scope().CopyTo(osl.Scope())
						osl.SetSchemaUrl(sl.SchemaUrl())
					}
					lr.CopyTo(osl.LogRecords().AppendEmpty())
				}
				idx++
			}
		}
	}
	return out
}
