package fjord_test

// The architecture is a test: these rules (ARCHITECTURE.md, "Import rules")
// fail `go test ./...` when an import breaks them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const module = "github.com/fjord-data/fjord"

// corePackages are the capabilities' concrete APIs (those that exist so
// far are checked; the rest are checked as soon as they appear).
var corePackages = []string{"eventstore", "pubsub", "outbox", "inbox", "projection", "replica", "aggregate", "saga",
	"streamsql", "resilience", "compose", "refdata"}

// heavyClients are import-path prefixes of client libraries and telemetry
// that only adapters (and telemetry) may import.
var heavyClients = []string{
	"github.com/jackc/",                                           // pgx
	"github.com/nats-io/",                                         // nats.go, nats-server
	"github.com/rabbitmq/amqp091-go", "github.com/streadway/amqp", // amqp
	"github.com/twmb/franz-go", "github.com/segmentio/kafka-go", "github.com/IBM/sarama", "github.com/confluentinc/", // kafka
	"go.opentelemetry.io/",   // otel
	"github.com/prometheus/", // prometheus
}

// pkg is what a rule sees of a package: its path relative to the module
// ("eventstore/driver"), and its imports as full import paths.
type pkg struct {
	rel      string
	imports  []string // direct
	deps     []string // transitive
	standard map[string]bool
}

// A rule applies to some of the module's packages and forbids some of their
// imports (direct, or transitive when deps is set).
type rule struct {
	name    string
	applies func(rel string) bool
	deps    bool
	// forbids returns why pkg may not import dep, or "".
	forbids func(p *pkg, dep string) string
}

var rules = []rule{
	{
		name:    "driver packages import only the standard library",
		applies: func(rel string) bool { return lastElem(rel) == "driver" },
		deps:    true,
		forbids: func(p *pkg, dep string) string {
			if !p.standard[dep] {
				return "not in the standard library"
			}
			return ""
		},
	},
	{
		name:    "core packages import no client library, telemetry, server, console or cmd",
		applies: func(rel string) bool { return slices.Contains(corePackages, rel) },
		deps:    true,
		forbids: func(p *pkg, dep string) string {
			for _, c := range heavyClients {
				if strings.HasPrefix(dep, c) {
					return "a client or telemetry library: only adapters and telemetry import it"
				}
			}
			if r, ok := relPath(dep); ok && (under(r, "server") || under(r, "console") || under(r, "cmd")) {
				return "core packages never depend on the server, console or binaries"
			}
			return ""
		},
	},
	{
		name:    "drivertest imports no adapter",
		applies: func(rel string) bool { return lastElem(rel) == "drivertest" },
		deps:    true,
		forbids: func(p *pkg, dep string) string {
			capability := parent(p.rel)
			r, ok := relPath(dep)
			if !ok || r == capability || !under(r, capability) {
				return ""
			}
			sibling := strings.SplitN(strings.TrimPrefix(r, capability+"/"), "/", 2)[0]
			if sibling == "driver" || sibling == "drivertest" || sibling == "internal" {
				return ""
			}
			return "an adapter: the conformance suite gets backends from the adapters' own tests"
		},
	},
	{
		name:    "demo imports no other capability's internal packages",
		applies: func(rel string) bool { return under(rel, "demo") },
		forbids: func(p *pkg, dep string) string {
			r, ok := relPath(dep)
			if ok && !under(r, "demo") && slices.Contains(strings.Split(r, "/"), "internal") {
				return "internal to another part of the module: the demo uses public packages only"
			}
			return ""
		},
	},
	{
		name:    "only telemetry imports otel and prometheus",
		applies: func(rel string) bool { return !under(rel, "telemetry") },
		forbids: func(p *pkg, dep string) string {
			if strings.HasPrefix(dep, "go.opentelemetry.io/") || strings.HasPrefix(dep, "github.com/prometheus/") {
				return "telemetry: other packages expose hooks that telemetry turns into metrics and spans"
			}
			return ""
		},
	},
	{
		name:    "resilience imports only the standard library",
		applies: func(rel string) bool { return rel == "resilience" },
		deps:    true,
		forbids: func(p *pkg, dep string) string {
			if !p.standard[dep] {
				return "not in the standard library: client libraries belong in its adapters (connectresilience)"
			}
			return ""
		},
	},
}

type violation struct {
	Rule, Package, Import, Reason string
}

// check returns every import of pkgs that breaks one of rules, and how many
// packages each rule applied to.
func check(pkgs []*pkg, rules []rule) ([]violation, map[string]int) {
	var vs []violation
	applied := make(map[string]int)
	for _, r := range rules {
		for _, p := range pkgs {
			if !r.applies(p.rel) {
				continue
			}
			applied[r.name]++
			imports := p.imports
			if r.deps {
				imports = p.deps
			}
			for _, dep := range imports {
				if reason := r.forbids(p, dep); reason != "" {
					vs = append(vs, violation{Rule: r.name, Package: p.rel, Import: dep, Reason: reason})
				}
			}
		}
	}
	return vs, applied
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	vs, applied := check(pkgs, rules)
	for _, v := range vs {
		t.Errorf("%s imports %s (%s), breaking the rule %q", v.Package, v.Import, v.Reason, v.Rule)
	}
	// Guard against rules that silently stop matching anything.
	for _, name := range []string{rules[0].name, rules[1].name} {
		if applied[name] == 0 {
			t.Errorf("rule %q applied to no package", name)
		}
	}
}

// listPackages lists the module's packages with `go list -deps -json`.
func listPackages(t *testing.T) []*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports,Deps,Error", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	type listed struct {
		ImportPath    string
		Standard      bool
		Imports, Deps []string
		Error         *struct{ Err string }
	}
	standard := make(map[string]bool)
	var pkgs []*pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		standard[l.ImportPath] = l.Standard
		rel, ok := relPath(l.ImportPath)
		if !ok {
			continue
		}
		if l.Error != nil {
			t.Errorf("package %s: %s", l.ImportPath, l.Error.Err)
		}
		pkgs = append(pkgs, &pkg{rel: rel, imports: l.Imports, deps: l.Deps, standard: standard})
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found none of the module's packages")
	}
	return pkgs
}

// relPath returns an import path relative to the module, and whether it is
// in the module at all.
func relPath(importPath string) (string, bool) {
	if importPath == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// under reports whether rel is dir or inside it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

func lastElem(rel string) string { return rel[strings.LastIndex(rel, "/")+1:] }

func parent(rel string) string {
	if i := strings.LastIndex(rel, "/"); i >= 0 {
		return rel[:i]
	}
	return ""
}

// TestRulesCatchViolations feeds the rules made-up packages, so that a rule
// that no longer catches what it should fails here and not in production.
func TestRulesCatchViolations(t *testing.T) {
	std := map[string]bool{"context": true, "fmt": true}
	m := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name string
		pkg  pkg
		want []violation
	}{
		{"driver imports only std", pkg{rel: "eventstore/driver", deps: []string{"context", "fmt"}}, nil},
		{"driver imports uuid", pkg{rel: "pubsub/driver", deps: []string{"context", "github.com/google/uuid"}},
			[]violation{{rules[0].name, "pubsub/driver", "github.com/google/uuid", "not in the standard library"}}},
		{"driver imports a fjord package", pkg{rel: "eventstore/driver", deps: []string{m("eventstore")}},
			[]violation{{rules[0].name, "eventstore/driver", m("eventstore"), "not in the standard library"}}},
		{"core imports uuid and its driver", pkg{rel: "eventstore", deps: []string{"github.com/google/uuid", m("eventstore/driver")}}, nil},
		{"core imports pgx", pkg{rel: "eventstore", deps: []string{"github.com/jackc/pgx/v5"}},
			[]violation{{rules[1].name, "eventstore", "github.com/jackc/pgx/v5", "a client or telemetry library: only adapters and telemetry import it"}}},
		{"core imports otel and nats", pkg{rel: "pubsub", deps: []string{"go.opentelemetry.io/otel", "github.com/nats-io/nats.go"}},
			[]violation{
				{rules[1].name, "pubsub", "go.opentelemetry.io/otel", "a client or telemetry library: only adapters and telemetry import it"},
				{rules[1].name, "pubsub", "github.com/nats-io/nats.go", "a client or telemetry library: only adapters and telemetry import it"},
				{rules[4].name, "pubsub", "go.opentelemetry.io/otel", "telemetry: other packages expose hooks that telemetry turns into metrics and spans"},
			}},
		{"core imports server", pkg{rel: "saga", deps: []string{m("server"), m("serverless")}},
			[]violation{{rules[1].name, "saga", m("server"), "core packages never depend on the server, console or binaries"}}},
		{"core imports cmd", pkg{rel: "refdata", deps: []string{m("cmd/fjord")}},
			[]violation{{rules[1].name, "refdata", m("cmd/fjord"), "core packages never depend on the server, console or binaries"}}},
		{"adapter imports pgx", pkg{rel: "eventstore/pgstore", deps: []string{"github.com/jackc/pgx/v5"}}, nil},
		{"drivertest imports its capability", pkg{rel: "eventstore/drivertest",
			deps: []string{m("eventstore"), m("eventstore/driver"), m("internal/headwatch"), m("pubsub/mempubsub")}}, nil},
		{"drivertest imports an adapter", pkg{rel: "eventstore/drivertest", deps: []string{m("eventstore/memstore")}},
			[]violation{{rules[2].name, "eventstore/drivertest", m("eventstore/memstore"), "an adapter: the conformance suite gets backends from the adapters' own tests"}}},
		{"demo imports public packages", pkg{rel: "demo/shop", imports: []string{m("eventstore"), m("demo/shop/internal/cart")}}, nil},
		{"demo imports a harness", pkg{rel: "demo/shop/orders", imports: []string{m("internal/bench")}},
			[]violation{{rules[3].name, "demo/shop/orders", m("internal/bench"), "internal to another part of the module: the demo uses public packages only"}}},
		{"server imports prometheus", pkg{rel: "server", imports: []string{"github.com/prometheus/client_golang/prometheus"}},
			[]violation{{rules[4].name, "server", "github.com/prometheus/client_golang/prometheus", "telemetry: other packages expose hooks that telemetry turns into metrics and spans"}}},
		{"telemetry imports prometheus", pkg{rel: "telemetry", imports: []string{"github.com/prometheus/client_golang/prometheus"}}, nil},
		{"resilience imports connect", pkg{rel: "resilience", deps: []string{"context", "connectrpc.com/connect"}},
			[]violation{{rules[5].name, "resilience", "connectrpc.com/connect", "not in the standard library: client libraries belong in its adapters (connectresilience)"}}},
		{"connectresilience imports connect", pkg{rel: "resilience/connectresilience", deps: []string{"connectrpc.com/connect", m("resilience")}}, nil},
		{"demo imports eventstore internals", pkg{rel: "demo/shop", imports: []string{m("internal/headwatch")}},
			[]violation{{rules[3].name, "demo/shop", m("internal/headwatch"), "internal to another part of the module: the demo uses public packages only"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.pkg
			p.standard = std
			p.imports = append(p.imports, p.deps...) // a transitive import is often direct too
			got, _ := check([]*pkg{&p}, rules)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}
