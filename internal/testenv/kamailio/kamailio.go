// Package kamailio runs Kamailio (Debian's package) for the tests and
// benchmarks: a config template rendered into a temp dir, Kamailio in the
// foreground on it, ready once it has bound its SIP port.
package kamailio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"text/template"
	"time"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// Modules finds Debian's module directory (/usr/lib/<multiarch>/...).
func Modules(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	if len(dirs) == 0 {
		t.Fatal("kamailio modules not found: run `make deps-apt` (Debian package kamailio)")
	}
	return dirs[0] + "/"
}

// readyTimeout is how long Kamailio may take to bind its port.
const readyTimeout = 20 * time.Second

// Start renders the config template at path with data (plus Port, the
// UDP port on 127.0.0.1 it must listen on, ModulesDir and DBDir, a temp
// dir), runs kamailio on it in the foreground until the test ends and
// waits until it has bound Port; args go before the foreground flags (-m
// 512, say). Its log is what it wrote.
func Start(t testing.TB, path string, port int, data map[string]any, args ...string) *childproc.Process {
	t.Helper()
	dir := t.TempDir()
	data["Port"] = port
	data["ModulesDir"] = Modules(t)
	data["DBDir"] = dir
	var cfg bytes.Buffer
	if err := template.Must(template.ParseFiles(path)).Execute(&cfg, data); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(rendered, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"-f", rendered}, args...),
		"-DD", "-E", "-w", dir, "-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"))
	p := testenv.Start(t, childproc.Spec{Path: "kamailio", Args: args, Log: filepath.Join(dir, "kamailio.log")})
	testenv.WaitReady(t, p, readyTimeout, childproc.UDPBound(port))
	return p
}
