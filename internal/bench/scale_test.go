package bench

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResidentKiB(t *testing.T) {
	tests := []struct {
		name       string
		status     string
		rss, peak  int64
		wantFailed bool
	}{
		{"linux", "Name:\tfjord\nVmPeak:\t 1300 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t5\n", 1024, 2048, false},
		{"missing", "Name:\tfjord\n", 0, 0, false},
		{"no unit", "VmRSS:\t1024\n", 0, 0, true},
		{"not a number", "VmHWM:\tlots kB\n", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, peak, err := residentKiB([]byte(tt.status))
			if (err != nil) != tt.wantFailed {
				t.Fatalf("error %v, want failure %t", err, tt.wantFailed)
			}
			if diff := cmp.Diff([2]int64{tt.rss, tt.peak}, [2]int64{rss, peak}); diff != "" {
				t.Errorf("rss, peak (-want +got):\n%s", diff)
			}
		})
	}
}
