package filestore

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A segment is one log file, named by the position of its first frame.
// Its size is fixed when it is created (preallocated with zeros), so
// writing into it changes no file-size metadata.
type segment struct {
	base uint64 // position of the first frame; identifies the segment in locations
	path string
	f    *os.File
	size int64 // file size
}

const segmentExt = ".seg"

func segmentName(base uint64) string { return fmt.Sprintf("%020d%s", base, segmentExt) }

// listSegments opens the segment files of dir in log order.
func listSegments(dir string) ([]*segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []*segment
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		base, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		seg, err := openSegment(filepath.Join(dir, name), base)
		if err != nil {
			closeSegments(segs)
			return nil, err
		}
		segs = append(segs, seg)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].base < segs[j].base })
	return segs, nil
}

func openSegment(path string, base uint64) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &segment{base: base, path: path, f: f, size: fi.Size()}, nil
}

// createSegment creates and preallocates a segment, then syncs it and its
// directory so that the file and its size survive a crash.
func createSegment(dir string, base uint64, size int64) (*segment, error) {
	path := filepath.Join(dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("filestore: create segment: %w", err)
	}
	seg := &segment{base: base, path: path, f: f, size: 0}
	if err := seg.grow(size); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return seg, nil
}

// grow preallocates the segment to size bytes (if it is smaller) and syncs it.
func (s *segment) grow(size int64) error {
	if size <= s.size {
		return nil
	}
	if err := unix.Fallocate(int(s.f.Fd()), 0, 0, size); err != nil {
		// Some file systems cannot preallocate; extending the file works
		// everywhere, at the cost of sparse blocks.
		if err := s.f.Truncate(size); err != nil {
			return fmt.Errorf("filestore: preallocate %s: %w", s.path, err)
		}
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", s.path, err)
	}
	s.size = size
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("filestore: sync directory %s: %w", dir, err)
	}
	return nil
}

func closeSegments(segs []*segment) {
	for _, s := range segs {
		s.f.Close()
	}
}

// findSegment returns the segment with the given base, or nil.
func findSegment(segs []*segment, base uint64) (int, *segment) {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base >= base })
	if i < len(segs) && segs[i].base == base {
		return i, segs[i]
	}
	return -1, nil
}
