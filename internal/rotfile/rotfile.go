// Package rotfile appends lines to a file and rotates it by size the way
// SIPhon's CDR file backend does: when the file reaches the limit it is
// renamed to <path>.<YYYYMMDDTHHMMSSmmmZ> (UTC) and a new file starts.
// Rotated files may be gzipped and pruned to a maximum count.
package rotfile

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fsync policies.
type Fsync int

// When data is forced to disk.
const (
	FsyncNever  Fsync = iota // the OS decides
	FsyncRotate              // before a file is renamed away, and on Close
	FsyncFlush               // on every Flush (and rotation, and Close)
)

// Options configure a Writer.
type Options struct {
	Path     string
	MaxBytes int64 // rotate when the file reaches this size; 0 never rotates
	Compress bool  // gzip rotated files in the background
	MaxFiles int   // keep at most this many rotated files; 0 keeps all
	Fsync    Fsync
	// Header is written at the start of every new file (a CSV header).
	Header []byte
	// Now is the clock for rotated names (tests set it).
	Now func() time.Time
	// OnError is told about background failures (compression, pruning).
	OnError func(error)
	// OnRotate is told each rotated file's name.
	OnRotate func(name string)
}

// Writer appends lines; it is not safe for concurrent use.
type Writer struct {
	o    Options
	f    *os.File
	w    *bufio.Writer
	size int64
	bg   sync.WaitGroup
	bgMu sync.Mutex // one background task at a time: pruning never races compression
}

// TimeFormat is the layout of the rotation suffix, without the dot before
// the milliseconds: 20260306T142301042Z.
const TimeFormat = "20060102T150405.000Z"

// RotatedName returns the name a file at path gets when rotated at t.
func RotatedName(path string, t time.Time) string {
	return path + "." + strings.Replace(t.UTC().Format(TimeFormat), ".", "", 1)
}

// Open opens (appending) or creates the file and its directory.
func Open(o Options) (*Writer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnError == nil {
		o.OnError = func(error) {}
	}
	if o.OnRotate == nil {
		o.OnRotate = func(string) {}
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return nil, fmt.Errorf("rotfile: %w", err)
	}
	w := &Writer{o: o}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	if err := repairTail(w.o.Path); err != nil {
		return err
	}
	f, err := os.OpenFile(w.o.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotfile: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("rotfile: %w", err)
	}
	w.f, w.size = f, st.Size()
	w.w = bufio.NewWriterSize(f, 64<<10)
	if w.size == 0 && len(w.o.Header) > 0 {
		return w.write(w.o.Header)
	}
	return nil
}

// repairTail cuts a partial last line, left when the process died between
// two writes of one buffer. Its batch was never acknowledged, so it will be
// written again whole; appending after the fragment would corrupt the line.
func repairTail(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rotfile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return fmt.Errorf("rotfile: %w", err)
	}
	if last[0] == '\n' {
		return nil
	}
	// find the last newline, reading backwards a block at a time
	const block = 64 << 10
	end := st.Size()
	buf := make([]byte, block)
	for end > 0 {
		start := max(end-block, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("rotfile: %w", err)
		}
		if i := lastNewline(buf[:n]); i >= 0 {
			return f.Truncate(start + int64(i) + 1)
		}
		end = start
	}
	return f.Truncate(0)
}

func lastNewline(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			return i
		}
	}
	return -1
}

func (w *Writer) write(b []byte) error {
	n, err := w.w.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("rotfile: write %s: %w", w.o.Path, err)
	}
	return nil
}

// Write appends one line (which must end in a newline), rotating after it
// when the file reached the size limit.
func (w *Writer) Write(line []byte) error {
	if err := w.write(line); err != nil {
		return err
	}
	if w.o.MaxBytes > 0 && w.size >= w.o.MaxBytes {
		return w.rotate()
	}
	return nil
}

// Flush writes buffered lines to the file (and to disk with FsyncFlush).
func (w *Writer) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("rotfile: write %s: %w", w.o.Path, err)
	}
	if w.o.Fsync == FsyncFlush {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("rotfile: fsync %s: %w", w.o.Path, err)
		}
	}
	return nil
}

func (w *Writer) rotate() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("rotfile: write %s: %w", w.o.Path, err)
	}
	if w.o.Fsync != FsyncNever {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("rotfile: fsync %s: %w", w.o.Path, err)
		}
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotfile: close %s: %w", w.o.Path, err)
	}
	name := w.freeName()
	if err := os.Rename(w.o.Path, name); err != nil {
		// keep appending to the full file rather than lose lines
		if oerr := w.open(); oerr != nil {
			return errors.Join(fmt.Errorf("rotfile: rotate: %w", err), oerr)
		}
		return fmt.Errorf("rotfile: rotate: %w", err)
	}
	w.o.OnRotate(name)
	if err := w.open(); err != nil {
		return err
	}
	w.bg.Add(1)
	go func() {
		defer w.bg.Done()
		w.bgMu.Lock()
		defer w.bgMu.Unlock()
		if w.o.Compress {
			if err := compress(name); err != nil {
				w.o.OnError(err)
			}
		}
		if w.o.MaxFiles > 0 {
			if err := prune(w.o.Path, w.o.MaxFiles); err != nil {
				w.o.OnError(err)
			}
		}
	}()
	return nil
}

// freeName returns the rotated name for now, moved on a millisecond at a
// time if two rotations land in one millisecond.
func (w *Writer) freeName() string {
	t := w.o.Now()
	for {
		name := RotatedName(w.o.Path, t)
		if !exists(name) && !exists(name+".gz") {
			return name
		}
		t = t.Add(time.Millisecond)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Close flushes, syncs (unless FsyncNever), closes, and waits for background
// compression and pruning.
func (w *Writer) Close() error {
	err := w.w.Flush()
	if err == nil && w.o.Fsync != FsyncNever {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.bg.Wait()
	if err != nil {
		return fmt.Errorf("rotfile: close %s: %w", w.o.Path, err)
	}
	return nil
}

func compress(name string) error {
	in, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("rotfile: compress: %w", err)
	}
	defer in.Close()
	tmp := name + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("rotfile: compress: %w", err)
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name+".gz")
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rotfile: compress %s: %w", name, err)
	}
	return os.Remove(name)
}

// Rotated lists the rotated files of path, oldest first.
func Rotated(path string) ([]string, error) {
	matches, err := filepath.Glob(path + ".*")
	if err != nil {
		return nil, err
	}
	var out []string
	prefix := filepath.Base(path) + "."
	for _, m := range matches {
		suffix := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), prefix), ".gz")
		if len(suffix) == len("20060102T150405000Z") && suffix[8] == 'T' && suffix[len(suffix)-1] == 'Z' {
			out = append(out, m)
		}
	}
	// the timestamp sorts as text; a .gz and its source never coexist long
	sort.Strings(out)
	return out, nil
}

func prune(path string, keep int) error {
	files, err := Rotated(path)
	if err != nil {
		return fmt.Errorf("rotfile: prune: %w", err)
	}
	var errs []error
	for len(files) > keep {
		if err := os.Remove(files[0]); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
		files = files[1:]
	}
	return errors.Join(errs...)
}
