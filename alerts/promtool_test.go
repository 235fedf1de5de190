//go:build integration

package alerts

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// promtool (Debian's prometheus package) checks and unit-tests the rules
// (-tags integration).

func TestPromtoolCheckRules(t *testing.T) {
	out, err := testenv.Run(t, childproc.Spec{Path: "promtool", Args: append([]string{"check", "rules"}, ruleFiles(t)...)})
	require.NoError(t, err, "%s", out)
}

func TestPromtoolTestRules(t *testing.T) {
	tests, err := filepath.Glob("tests/*.test.yml")
	require.NoError(t, err)
	require.NotEmpty(t, tests)
	out, err := testenv.Run(t, childproc.Spec{Path: "promtool", Args: append([]string{"test", "rules"}, tests...)})
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, out, "FAILED")
}
