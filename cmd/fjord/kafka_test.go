package main

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestKafkaTopics(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	h := newHarness(t)

	out := h.mustRun("", "kafka", "create-topic", "shop.orders", "--brokers", brokers, "--partitions", "3",
		"--config", "retention.ms=3600000")
	if diff := cmp.Diff("created topic \"shop.orders\" with 3 partitions\n", out); diff != "" {
		t.Errorf("create-topic output (-want +got):\n%s", diff)
	}
	admin, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	topics, err := kadm.NewClient(admin).ListTopics(context.Background(), "shop.orders")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(topics["shop.orders"].Partitions); got != 3 {
		t.Errorf("shop.orders has %d partitions, want 3", got)
	}

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"exists", []string{"create-topic", "shop.orders", "--brokers", brokers}, "topic already exists"},
		{"no brokers", []string{"create-topic", "x"}, "missing --brokers"},
		{"bad config", []string{"create-topic", "x", "--brokers", brokers, "--config", "novalue"}, `invalid --config "novalue"`},
		{"bad partitions", []string{"create-topic", "x", "--brokers", brokers, "--partitions", "0"}, "invalid --partitions 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := h.run("", append([]string{"kafka"}, tc.args...)...)
			if err == nil || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("fjord kafka %s: err %v, stderr %q; want an error containing %q", strings.Join(tc.args, " "), err, errOut, tc.wantErr)
			}
		})
	}

	if out := h.mustRun("", "kafka", "delete-topic", "shop.orders", "--brokers", brokers); out != "deleted topic \"shop.orders\"\n" {
		t.Errorf("delete-topic output %q", out)
	}
	h.mustRun("", "kafka", "delete-topic", "shop.orders", "--brokers", brokers)
}
