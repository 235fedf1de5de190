// Package sipp runs sipp (Debian's sip-tester) in tests: it starts a
// scenario on a loopback port, keeps sipp's message trace, errors and
// statistics in a temp dir, waits for it, and reads what it logged.
package sipp

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/siphon-otel/siphon-otel/internal/childproc"
	"github.com/siphon-otel/siphon-otel/internal/testenv"
)

// Scenario returns the path of a scenario: a name is one of
// proxy/testdata/sipp (without .xml), a path is itself.
func Scenario(name string) string {
	if strings.ContainsRune(name, '/') {
		return name
	}
	return filepath.Join(testenv.RepoRoot(), "proxy", "testdata", "sipp", name+".xml")
}

// Sipp is one sipp process.
type Sipp struct {
	*childproc.Process
	t      testing.TB
	Name   string
	Dir    string // sipp.out, messages.log, errors.log, stat.csv
	msgLog string
}

// Start runs the scenario (see Scenario) on 127.0.0.1:localPort over
// transport (sipp's -t: u1, t1 ...); args follow (keys, -m, -s, the target
// last). sipp is killed when the test ends.
func Start(t testing.TB, scenario, transport string, localPort int, args ...string) *Sipp {
	t.Helper()
	scenario = Scenario(scenario)
	s := &Sipp{t: t, Name: filepath.Base(scenario), Dir: t.TempDir()}
	s.msgLog = filepath.Join(s.Dir, "messages.log")
	argv := append([]string{"-sf", scenario, "-i", "127.0.0.1", "-p", strconv.Itoa(localPort), "-t", transport,
		"-trace_msg", "-message_file", s.msgLog, "-trace_err", "-error_file", filepath.Join(s.Dir, "errors.log"),
		"-trace_stat", "-stf", filepath.Join(s.Dir, "stat.csv"), "-fd", "1",
		"-nostdin", "-timeout", "60", "-timeout_error"}, args...)
	s.Process = testenv.Start(t, childproc.Spec{Name: "sipp " + s.Name, Path: "sipp", Args: argv, Dir: s.Dir,
		Log: filepath.Join(s.Dir, "sipp.out")})
	return s
}

// waitBound bounds a scenario's run (sipp's own -timeout is 60 s).
const waitBound = 90 * time.Second

// Wait waits for sipp to end and requires success (exit 0); on failure the
// test fails with sipp's output, errors and messages.
func (s *Sipp) Wait() {
	s.t.Helper()
	err := s.Process.Wait(waitBound)
	if !s.Exited() {
		s.Kill()
		s.t.Fatalf("sipp %s did not finish: %v", s.Name, err)
	}
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(s.Dir, "errors.log"))
		msgs, _ := os.ReadFile(s.msgLog)
		s.t.Fatalf("sipp %s: %v\noutput:\n%s\nerrors:\n%s\nmessages:\n%s", s.Name, err, s.Log(), errs, msgs)
	}
}

// Stats returns sipp's final SuccessfulCall and FailedCall counts from its
// statistics file.
func (s *Sipp) Stats() (ok, failed int) {
	s.t.Helper()
	f, err := os.Open(filepath.Join(s.Dir, "stat.csv"))
	require.NoError(s.t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	require.NoError(s.t, err)
	require.GreaterOrEqual(s.t, len(rows), 2, "sipp %s wrote no statistics", s.Name)
	col := func(name string) int {
		for i, h := range rows[0] {
			if h == name {
				v, err := strconv.Atoi(rows[len(rows)-1][i])
				require.NoError(s.t, err)
				return v
			}
		}
		s.t.Fatalf("sipp %s statistics have no %s", s.Name, name)
		return 0
	}
	return col("SuccessfulCall(C)"), col("FailedCall(C)")
}

// Msg is one message as sipp logged it.
type Msg struct {
	Sent   bool   // sipp sent it (else received)
	First  string // method, or status code for a response
	CSeq   string // "1 INVITE"
	CallID string
	Body   string // lines joined by CRLF, without the blank lines sipp adds after it
}

// Messages parses sipp's -trace_msg log.
func (s *Sipp) Messages() []Msg {
	s.t.Helper()
	out, err := s.ReadMessages()
	require.NoError(s.t, err)
	return out
}

// ReadMessages parses sipp's -trace_msg log as far as sipp wrote it
// (sipp flushes each message as it logs it), for a test that waits on
// what sipp sent or received while it runs.
func (s *Sipp) ReadMessages() ([]Msg, error) {
	f, err := os.Open(s.msgLog)
	if err != nil {
		return nil, fmt.Errorf("sipp %s message log: %w", s.Name, err)
	}
	defer f.Close()
	var out []Msg
	var cur *Msg
	var body []string
	inHeaders, inBody := false, false
	done := func() {
		if cur != nil {
			cur.Body = strings.TrimRight(strings.Join(body, "\r\n"), "\r\n")
			out = append(out, *cur)
		}
		cur, body, inHeaders, inBody = nil, nil, false, false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "-----------------------------------------------"):
			done()
		case cur == nil && (strings.Contains(line, " message sent") || strings.Contains(line, " message received")):
			cur = &Msg{Sent: strings.Contains(line, " message sent")}
		case cur != nil && cur.First == "" && line != "":
			if code, ok := strings.CutPrefix(line, "SIP/2.0 "); ok {
				cur.First, _, _ = strings.Cut(code, " ")
			} else {
				cur.First, _, _ = strings.Cut(line, " ")
			}
			inHeaders = true
		case cur != nil && inHeaders && line == "":
			inHeaders, inBody = false, true
		case cur != nil && inBody:
			body = append(body, line)
		case cur != nil && inHeaders:
			name, value, _ := strings.Cut(line, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "cseq":
				cur.CSeq = strings.Join(strings.Fields(value), " ")
			case "call-id", "i":
				cur.CallID = strings.TrimSpace(value)
			}
		}
	}
	done()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sipp %s message log: %w", s.Name, err)
	}
	return out, nil
}

// CallID is the Call-ID of the first message sipp logged.
func (s *Sipp) CallID() string {
	s.t.Helper()
	ms := s.Messages()
	require.NotEmpty(s.t, ms, "sipp %s logged no messages", s.Name)
	return ms[0].CallID
}

// Expect writes a copy of a scenario (see Scenario) whose response="EXPECT" is code (sipp
// does not substitute keys in recv attributes) and returns its path.
func Expect(t testing.TB, scenario string, code int) string {
	t.Helper()
	return Rewrite(t, scenario, strconv.Itoa(code), `response="EXPECT"`, fmt.Sprintf(`response="%d"`, code))
}

// MediaPort writes a copy of a scenario (see Scenario) whose SDP names
// port ([media_port]) and returns its path: for media sent and received
// by an endpoint beside sipp, which holds the port already, so sipp's -mp
// cannot name it (sipp binds its -mp port itself, and fails if it is
// taken).
func MediaPort(t testing.TB, scenario string, port int) string {
	t.Helper()
	return Rewrite(t, scenario, "mp"+strconv.Itoa(port), "[media_port]", strconv.Itoa(port))
}

// Rewrite writes a copy of a scenario (see Scenario) with every old
// string replaced by its new one (pairs, as strings.NewReplacer) to a
// file named by the scenario and tag, and returns its path.
func Rewrite(t testing.TB, scenario, tag string, oldnew ...string) string {
	t.Helper()
	scenario = Scenario(scenario)
	b, err := os.ReadFile(scenario)
	require.NoError(t, err)
	out := strings.NewReplacer(oldnew...).Replace(string(b))
	require.NotEqual(t, string(b), out, "%s has none of %q", scenario, oldnew)
	p := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%s.xml", strings.TrimSuffix(filepath.Base(scenario), ".xml"), tag))
	require.NoError(t, os.WriteFile(p, []byte(out), 0o600))
	return p
}
