package rotfile

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestRotationNamingAndHeader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "cdr.jsonl")
	c := &clock{time.Date(2026, 3, 6, 14, 23, 1, 42e6, time.UTC)}
	var rotated []string
	w, err := Open(Options{Path: path, MaxBytes: 20, Header: []byte("h\n"), Now: c.now, OnRotate: func(n string) { rotated = append(rotated, n) }})
	require.NoError(t, err)
	for _, l := range []string{"0123456789\n", "0123456789\n", "abc\n"} {
		require.NoError(t, w.Write([]byte(l)))
	}
	// same millisecond: the next name moves on by 1 ms
	require.NoError(t, w.Write([]byte("0123456789012345678\n")))
	require.NoError(t, w.Close())
	assert.Equal(t, []string{path + ".20260306T142301042Z", path + ".20260306T142301043Z"}, rotated)
	assert.Equal(t, "h\n0123456789\n0123456789\n", read(t, rotated[0]))
	assert.Equal(t, "h\nabc\n0123456789012345678\n", read(t, rotated[1]))
	assert.Equal(t, "h\n", read(t, path))
	got, err := Rotated(path)
	require.NoError(t, err)
	assert.Equal(t, rotated, got)
}

func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdr.jsonl")
	w, err := Open(Options{Path: path, MaxBytes: 15, Header: []byte("h\n")})
	require.NoError(t, err)
	require.NoError(t, w.Write([]byte("first\n")))
	require.NoError(t, w.Close())
	w, err = Open(Options{Path: path, MaxBytes: 15, Header: []byte("h\n")})
	require.NoError(t, err)
	require.NoError(t, w.Write([]byte("second\n"))) // 2+6+7 = 15: rotates, header not repeated
	require.NoError(t, w.Close())
	files, err := Rotated(path)
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, "h\nfirst\nsecond\n", read(t, files[0]))
}

func TestCompressAndPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdr.jsonl")
	c := &clock{time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)}
	w, err := Open(Options{Path: path, MaxBytes: 1, Compress: true, MaxFiles: 2, Fsync: FsyncFlush, Now: c.now})
	require.NoError(t, err)
	for i := range 5 {
		c.t = c.t.Add(time.Second)
		require.NoError(t, w.Write([]byte(strings.Repeat("x", i+1)+"\n")))
	}
	require.NoError(t, w.Close())
	files, err := Rotated(path)
	require.NoError(t, err)
	require.Len(t, files, 2, "the oldest are pruned")
	for i, f := range files {
		assert.True(t, strings.HasSuffix(f, ".gz"), f)
		zf, err := os.Open(f)
		require.NoError(t, err)
		zr, err := gzip.NewReader(zf)
		require.NoError(t, err)
		b, err := io.ReadAll(zr)
		require.NoError(t, err)
		zf.Close()
		assert.Equal(t, strings.Repeat("x", i+4)+"\n", string(b))
	}
	leftovers, _ := filepath.Glob(path + ".*.tmp")
	assert.Empty(t, leftovers)
}

func TestRotatedIgnoresOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdr.jsonl")
	for _, n := range []string{".20260306T142301042Z", ".20260306T142301042Z.gz", ".bak", ".2026"} {
		require.NoError(t, os.WriteFile(path+n, nil, 0o600))
	}
	got, err := Rotated(path)
	require.NoError(t, err)
	assert.Equal(t, []string{path + ".20260306T142301042Z", path + ".20260306T142301042Z.gz"}, got)
}

func TestReopenCutsAPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdr.jsonl")
	require.NoError(t, os.WriteFile(path, []byte("{\"a\":1}\n{\"b\":"), 0o600))
	w, err := Open(Options{Path: path})
	require.NoError(t, err)
	require.NoError(t, w.Write([]byte("{\"b\":2}\n")))
	require.NoError(t, w.Close())
	assert.Equal(t, "{\"a\":1}\n{\"b\":2}\n", read(t, path))

	// a fragment with no newline at all, longer than one read block
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("x", 200<<10)), 0o600))
	w, err = Open(Options{Path: path})
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Empty(t, read(t, path))
}
