package natspubsub

import "testing"

func TestServerAtLeast(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"2.14.0", true},
		{"2.15.2", true},
		{"2.15.2-beta.1", true},
		{"v2.14.1", true},
		{"3.0.0", true},
		{"2.13.9", false},
		{"2.9.10", false},
		{"1.99.0", false},
		{"", false},
		{"2", false},
		{"two.fourteen", false},
	}
	for _, tt := range tests {
		if got := serverAtLeast(tt.version, 2, 14); got != tt.want {
			t.Errorf("serverAtLeast(%q, 2, 14) = %v, want %v", tt.version, got, tt.want)
		}
	}
}
