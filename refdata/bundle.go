package refdata

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bundle is a signed set of datasets that replaces the datasets of the same
// names in a Registry's snapshot. Its encoding is line-oriented UTF-8 text:
//
//	=fjord-refdata-bundle 1
//	=version 2026.11.26.1
//	=created 2026-11-26T09:00:00Z
//	=table countries 2026.11.26.1 CLDR 48.2.0 (Unicode-3.0)
//	alpha2	alpha3	numeric	name	official	aliases
//	AD	AND	020	Andorra	Principality of Andorra
//	…
//	=end
//	=signature ed25519 KEYID BASE64
//
// Each table starts with its header row; rows are sorted by key. The
// signature covers every byte up to and including the "=end" line, and
// decoding accepts only the canonical encoding of what it decoded, so one
// content has exactly one signed form.
type Bundle struct {
	Version string
	Created time.Time // UTC, whole seconds
	Tables  []Table   // in canonical dataset order; "tombstones" last
	// Signature is set by rollout.Sign or DecodeBundle; nil when unsigned.
	Signature *Signature
}

// Signature is an Ed25519 signature of a bundle's canonical encoding
// (SignedBytes); refdata/rollout makes and checks them.
type Signature struct {
	KeyID string // rollout.KeyID of the public key
	Sig   []byte
}

const bundleMagic = "=fjord-refdata-bundle 1"

// signatureSize is the size of an Ed25519 signature. Signing and
// verifying live in refdata/rollout, so that programs that only look data
// up do not link the crypto packages.
const signatureSize = 64

// Errors of bundle handling. Each is wrapped with the details.
var (
	ErrMalformed    = errors.New("refdata: malformed bundle")
	ErrUnsigned     = errors.New("refdata: bundle is not signed")
	ErrBadSignature = errors.New("refdata: bad bundle signature")
	ErrInvalid      = errors.New("refdata: invalid bundle")
	ErrStale        = errors.New("refdata: bundle is not newer")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Table returns the bundle's table of the named dataset.
func (b *Bundle) Table(name string) (*Table, bool) {
	for i := range b.Tables {
		if b.Tables[i].Name == name {
			return &b.Tables[i], true
		}
	}
	return nil, false
}

// Normalize sorts the tables into canonical order and each table's rows
// by key, and truncates Created to whole seconds in UTC.
func (b *Bundle) Normalize() {
	for i := range b.Tables {
		b.Tables[i].SortRows()
	}
	sortTables(b.Tables)
	b.Created = b.Created.UTC().Truncate(time.Second)
}

func sortTables(ts []Table) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && schemaIndex(ts[j].Name) < schemaIndex(ts[j-1].Name); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// check verifies the structure the encoding needs.
func (b *Bundle) check() error {
	if err := checkVersion(b.Version); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if !b.Created.Equal(b.Created.UTC().Truncate(time.Second)) {
		return errors.New("bundle: created is not in whole seconds")
	}
	last := -1
	for i := range b.Tables {
		t := &b.Tables[i]
		if err := t.checkShape(); err != nil {
			return err
		}
		idx := schemaIndex(t.Name)
		if idx <= last {
			return fmt.Errorf("bundle: table %s is duplicated or out of order", t.Name)
		}
		last = idx
	}
	return nil
}

// SignedBytes returns the canonical encoding that a signature covers. It
// fails when the bundle cannot be encoded (see Table).
func (b *Bundle) SignedBytes() ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var w bytes.Buffer
	w.WriteString(bundleMagic + "\n")
	fmt.Fprintf(&w, "=version %s\n=created %s\n", b.Version, b.Created.UTC().Format(time.RFC3339))
	for _, t := range b.Tables {
		s, _ := schemaOf(t.Name)
		w.WriteString("=table " + t.Name)
		if t.Name != tombstonesTable {
			w.WriteString(" " + t.Version)
			if t.Source != "" {
				w.WriteString(" " + t.Source)
			}
		}
		w.WriteByte('\n')
		writeRow(&w, s.cols)
		for _, r := range t.Rows {
			writeRow(&w, r)
		}
	}
	w.WriteString("=end\n")
	return w.Bytes(), nil
}

func writeRow(w *bytes.Buffer, fields []string) {
	for i, f := range fields {
		if i > 0 {
			w.WriteByte('\t')
		}
		w.WriteString(f)
	}
	w.WriteByte('\n')
}

// Encode returns the bundle's encoding, with its signature line when it is
// signed.
func (b *Bundle) Encode() ([]byte, error) {
	out, err := b.SignedBytes()
	if err != nil {
		return nil, err
	}
	if b.Signature != nil {
		out = fmt.Appendf(out, "=signature ed25519 %s %s\n", b.Signature.KeyID, base64.StdEncoding.EncodeToString(b.Signature.Sig))
	}
	return out, nil
}

// DecodeBundle parses an encoded bundle. It accepts only the canonical
// encoding; the error wraps ErrMalformed and names the line at fault. It
// does not verify the signature (see rollout.Verify) or the content (see
// Validate).
func DecodeBundle(data []byte) (*Bundle, error) {
	end := bytes.Index(data, []byte("\n=end\n"))
	if end < 0 {
		return nil, malformed("no =end line")
	}
	signed, tail := data[:end+len("\n=end\n")], data[end+len("\n=end\n"):]
	b, err := parseSigned(string(signed))
	if err != nil {
		return nil, err
	}
	if b.Signature, err = parseSignature(string(tail)); err != nil {
		return nil, err
	}
	canon, err := b.SignedBytes()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, signed) {
		return nil, malformed("not in canonical form (line order, spacing or sort order differ)")
	}
	return b, nil
}

func parseSignature(tail string) (*Signature, error) {
	if tail == "" {
		return nil, nil
	}
	line, ok := strings.CutSuffix(tail, "\n")
	f := strings.Split(line, " ")
	if !ok || strings.Contains(line, "\n") || len(f) != 4 || f[0] != "=signature" || f[1] != "ed25519" {
		return nil, malformed("after =end: want one line \"=signature ed25519 KEYID BASE64\"")
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(f[3])
	if err != nil || len(sig) != signatureSize {
		return nil, malformed("signature is not %d bytes of base64", signatureSize)
	}
	return &Signature{KeyID: f[2], Sig: sig}, nil
}

func parseSigned(text string) (*Bundle, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 || lines[0] != bundleMagic {
		return nil, malformed("line 1: want %q", bundleMagic)
	}
	b := &Bundle{}
	var ok bool
	if b.Version, ok = strings.CutPrefix(lines[1], "=version "); !ok {
		return nil, malformed("line 2: want =version")
	}
	created, ok := strings.CutPrefix(lines[2], "=created ")
	if !ok {
		return nil, malformed("line 3: want =created")
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return nil, malformed("line 3: created: %v", err)
	}
	b.Created = t.UTC()
	var cur *Table
	var width int
	for i := 3; i < len(lines)-1; i++ {
		line := lines[i]
		if h, isTable := strings.CutPrefix(line, "=table "); isTable {
			tb, s, err := parseTableHeader(h, i+1)
			if err != nil {
				return nil, err
			}
			if i+1 >= len(lines)-1 || lines[i+1] != strings.Join(s.cols, "\t") {
				return nil, malformed("line %d: table %s: want the header %q", i+2, s.name, strings.Join(s.cols, "\t"))
			}
			b.Tables = append(b.Tables, tb)
			cur, width = &b.Tables[len(b.Tables)-1], len(s.cols)
			i++
			continue
		}
		if cur == nil || strings.HasPrefix(line, "=") {
			return nil, malformed("line %d: unexpected %.40q", i+1, line)
		}
		row := strings.Split(line, "\t")
		if len(row) != width {
			return nil, malformed("line %d: table %s: %d fields, want %d", i+1, cur.Name, len(row), width)
		}
		cur.Rows = append(cur.Rows, row)
	}
	if lines[len(lines)-1] != "=end" {
		return nil, malformed("last line: want =end")
	}
	return b, nil
}

func parseTableHeader(h string, lineNo int) (Table, schema, error) {
	name, rest, _ := strings.Cut(h, " ")
	s, ok := schemaOf(name)
	if !ok {
		return Table{}, s, malformed("line %d: unknown dataset %q", lineNo, name)
	}
	t := Table{Name: name}
	if name != tombstonesTable {
		t.Version, t.Source, _ = strings.Cut(rest, " ")
	} else if rest != "" {
		return Table{}, s, malformed("line %d: tombstones take no version", lineNo)
	}
	return t, s, nil
}

// checkVersion accepts versions of dot-separated fields of letters and
// digits, such as 2026.11.26.1.
func checkVersion(v string) error {
	if v == "" || len(v) > 64 {
		return fmt.Errorf("version %q: want 1 to 64 characters", v)
	}
	for _, f := range strings.Split(v, ".") {
		if f == "" {
			return fmt.Errorf("version %q: empty field", v)
		}
		for _, c := range f {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return fmt.Errorf("version %q: want letters, digits, '-' and '.'", v)
			}
		}
	}
	return nil
}

// CompareVersions orders versions field by field: numeric fields as
// numbers, others as text, a missing field first. It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	af, bf := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(af) || i < len(bf); i++ {
		if i >= len(af) {
			return -1
		}
		if i >= len(bf) {
			return 1
		}
		if c := compareField(af[i], bf[i]); c != 0 {
			return c
		}
	}
	return 0
}

func compareField(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		if an != bn {
			if an < bn {
				return -1
			}
			return 1
		}
		return 0
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}
