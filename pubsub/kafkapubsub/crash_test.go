package kafkapubsub_test

import (
	"bufio"
	"context"
	"fmt"
	"github.com/fjord-data/fjord/pubsub/drivertest"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fjord-data/fjord/pubsub/driver"
	"github.com/fjord-data/fjord/pubsub/kafkapubsub"
)

// crashEnv carries "seeds|group|topic" to the child process of TestCrash.
const crashEnv = "FJORD_KAFKAPUBSUB_CRASH_CHILD"

// crashOptions make a dead member leave the group within about a second.
func crashOptions() *kafkapubsub.SubscriptionOptions {
	return &kafkapubsub.SubscriptionOptions{ClientOptions: []kgo.Opt{
		kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100 * time.Millisecond), kgo.RebalanceTimeout(time.Second),
	}}
}

// TestCrash runs a group member in a child process that acknowledges
// random subsets of what it receives, out of order, and kills it
// (SIGKILL) at a random point, three times over. Each time, a new member of
// the group must get back every message the dead one did not acknowledge
// and none it did. The child reports "acking ids" before each Ack and
// "acked" after it returns, so only the batch in flight at the kill is
// uncertain.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts child processes")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := newBroker(t, c.ListenAddrs())
	const total = 300
	topic, _ := b.filled(t, 3, total, 17)
	group := unique("g")

	// acked holds what the children reported acknowledged; uncertain what
	// was being acknowledged when one was killed (it may or may not come
	// again).
	acked, uncertain := map[string]bool{}, map[string]bool{}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range 3 {
		killAfter := 3 + rng.IntN(8)
		for id := range runCrashChild(t, strings.Join(b.seeds, ",")+"|"+group+"|"+topic, killAfter, acked) {
			uncertain[id] = true
		}
		t.Logf("round %d: killed after %d acks; %d acknowledged, %d uncertain", round, killAfter, len(acked), len(uncertain))
		// A survivor receives what is left, without acknowledging it.
		sub, err := kafkapubsub.OpenSubscription(b.seeds, group, topic, crashOptions())
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for n := range total {
			if id := strconv.Itoa(n); !acked[id] && !uncertain[id] {
				want = append(want, id)
			}
		}
		got := map[string]bool{}
		for _, m := range append(drivertest.ReceiveN(t, sub, len(want)), drain(sub)...) {
			got[m.Attributes["id"]] = true
		}
		sub.Close()
		for _, id := range want {
			if !got[id] {
				t.Errorf("round %d: message %s was not acknowledged and did not come again", round, id)
			}
		}
		for id := range got {
			if acked[id] && !uncertain[id] {
				t.Errorf("round %d: message %s was acknowledged and came again", round, id)
			}
		}
	}
}

// runCrashChild starts the child, lets it report killAfter acks, kills it,
// records the acknowledged ids in acked and returns the ids of the Ack in
// flight at the kill.
func runCrashChild(t *testing.T, arg string, killAfter int, acked map[string]bool) map[string]bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+arg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Kill()
		}
	}
	defer func() {
		kill()
		cmd.Wait()
	}()
	var inFlight []string
	acks := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) > 0 && f[0] == "acking":
			inFlight = f[1:]
		case len(f) == 1 && f[0] == "acked":
			for _, id := range inFlight {
				acked[id] = true
			}
			inFlight = nil
			if acks++; acks == killAfter {
				kill()
			}
		case len(f) > 0 && f[0] == "error":
			t.Fatalf("child: %s", sc.Text())
		}
	}
	if acks < killAfter {
		t.Fatalf("the child stopped after %d acks, before it was killed", acks)
	}
	uncertain := map[string]bool{}
	for _, id := range inFlight {
		uncertain[id] = true
	}
	return uncertain
}

// TestCrashChild is the child process of TestCrash: it receives and
// acknowledges random subsets, out of order, until it is killed.
func TestCrashChild(t *testing.T) {
	arg := os.Getenv(crashEnv)
	if arg == "" {
		t.Skip("the child process of TestCrash")
	}
	f := strings.Split(arg, "|")
	sub, err := kafkapubsub.OpenSubscription(strings.Split(f[0], ","), f[1], f[2], crashOptions())
	if err != nil {
		fmt.Println("error", err)
		return
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 2))
	ctx := context.Background()
	var held []*driver.Message
	for {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		msgs, err := sub.Receive(rctx, 1+rng.IntN(10))
		cancel()
		if err != nil && rctx.Err() == nil {
			fmt.Println("error", err)
			return
		}
		held = append(held, msgs...)
		// Acknowledge a random subset, in random order, keep the rest.
		rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
		n := rng.IntN(len(held) + 1)
		if n == 0 {
			continue
		}
		fmt.Println("acking", strings.Join(ids(held[:n]), " "))
		if err := sub.Ack(ctx, drivertest.AckIDs(held[:n])); err != nil {
			fmt.Println("error", err)
			return
		}
		fmt.Println("acked")
		held = held[n:]
	}
}
