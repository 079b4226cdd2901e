// Package wire holds what the refdata feeds (eventfeed, topicfeed) put on
// the wire alike: gzipped bundles and the JSON of a rollout status.
package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"

	"github.com/fjord-data/fjord/refdata/rollout"
)

// ContentType is that of a published bundle: its encoding, gzipped.
const ContentType = "application/vnd.fjord.refdata-bundle+gzip"

// MaxBundle bounds an unzipped bundle (64 MiB).
const MaxBundle = 64 << 20

// Zip gzips an encoded bundle.
func Zip(data []byte) ([]byte, error) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data) // a bytes.Buffer does not fail
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return z.Bytes(), nil
}

// Unzip returns the unzipped data, or data as it is when it is not gzip
// (for the watcher to reject) or unzips to more than MaxBundle.
func Unzip(data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return data
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxBundle))
	if err != nil {
		return data
	}
	return out
}

// status is the JSON of a status event or message.
type status struct {
	Instance string   `json:"instance"`
	Origin   string   `json:"origin"`
	Version  string   `json:"version,omitempty"`
	Applied  bool     `json:"applied"`
	Reason   string   `json:"reason,omitempty"`
	Datasets []string `json:"datasets,omitempty"` // name@version
	Held     []string `json:"held,omitempty"`
	Current  string   `json:"current"`
	Time     string   `json:"time"`
}

// StatusJSON encodes st.
func StatusJSON(st rollout.Status) ([]byte, error) {
	s := status{Instance: st.Instance, Origin: st.Origin, Version: st.Version, Applied: st.Applied, Reason: st.Reason,
		Held: st.Held, Current: st.Current, Time: st.Time.Format("2006-01-02T15:04:05.000Z07:00")}
	for _, d := range st.Datasets {
		s.Datasets = append(s.Datasets, d.Name+"@"+d.Version)
	}
	return json.Marshal(s)
}
