package records

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/siphon-otel/siphon-otel/internal/record"
	"github.com/siphon-otel/siphon-otel/internal/record/cdrrecord"
	"github.com/siphon-otel/siphon-otel/internal/testenv/fixture"
)

func TestCDRs(t *testing.T) {
	for _, tt := range []struct {
		name string
		ld   func() ([]string, string, []record.Item)
	}{
		{"no node", func() ([]string, string, []record.Item) {
			ids := []string{"a@192.0.2.1", "b@192.0.2.1"}
			return ids, "", items(CDRs(t, ids...))
		}},
		{"node", func() ([]string, string, []record.Item) {
			ids := []string{"c@192.0.2.1"}
			return ids, "10.0.0.5", items(NodeCDRs(t, "10.0.0.5", ids...))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ids, node, got := tt.ld()
			require.Len(t, got, len(ids))
			for i, it := range got {
				assert.Equal(t, record.KindCDR, record.KindOf(it.Log))
				assert.Equal(t, ids[i], record.CallID(it.Log))
				assert.Equal(t, node, record.Node(it.Resource))
				assert.JSONEq(t, string(fixture.CDRWithID(ids[i])), string(cdrrecord.BodyJSON(it.Log)), "the sample's JSON is the body")
			}
		})
	}
	assert.Equal(t, 0, CDRs(t).LogRecordCount())
}

func items(ld plog.Logs) []record.Item {
	var out []record.Item
	for _, it := range record.All(ld) {
		out = append(out, it)
	}
	return out
}
