package exec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fjord-data/fjord/streamsql/internal/parse"
	"github.com/fjord-data/fjord/streamsql/internal/plan"
)

// benchPipeline plans sql over ddl and returns the pipeline.
func benchPipeline(b *testing.B, ddl, sql string) *Pipeline {
	b.Helper()
	src, err := plan.Create(mustParseB(b, ddl).(*parse.CreateSource))
	if err != nil {
		b.Fatal(err)
	}
	q, err := plan.Select(mustParseB(b, sql).(*parse.Select), catalog{strings.ToUpper(src.Name): src})
	if err != nil {
		b.Fatal(err)
	}
	return New(q, &ErrorLog{})
}

func mustParseB(b *testing.B, sql string) parse.Statement {
	s, err := parse.Parse(sql)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// runBatches feeds b.N events of stream made by data through p in batches
// of 512, and reports the output changes per event.
func runBatches(b *testing.B, p *Pipeline, stream string, data func(i int) []byte) {
	const batch = 512
	out := 0
	defer func() { b.ReportMetric(float64(out)/float64(b.N), "changes/op") }()
	events := make([]Event, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for j := range n {
			events[j] = Event{Stream: stream, Type: "Placed", Time: int64(i + j), Position: int64(i + j + 1), Version: 1, Data: data(i + j)}
		}
		out += len(p.Process(events[:n]))
	}
}

// BenchmarkFilterProject is one event through JSON decoding of four
// columns, a filter that keeps half, and three projected expressions, on
// one goroutine. The event data is prepared outside the timer.
func BenchmarkFilterProject(b *testing.B) {
	p := benchPipeline(b, `CREATE STREAM orders (id STRING KEY, customer STRING, amount DOUBLE, qty INT) WITH (SOURCE='order-')`,
		`SELECT id, UCASE(customer) AS c, amount * qty AS total FROM orders WHERE amount > 50 EMIT CHANGES`)
	data := make([][]byte, 1000)
	for i := range data {
		data[i] = fmt.Appendf(nil, `{"id":"o%d","customer":"customer-%d","amount":%.1f,"qty":%d,"region":"eu-west","note":"standard delivery"}`, i, i%5000, float64(i%100)+0.5, i%7+1)
	}
	runBatches(b, p, "order-1", func(i int) []byte { return data[i%len(data)] })
}

// BenchmarkTumbling10k is one event through a GROUP BY over 10,000 keys in
// one-minute tumbling windows with COUNT and SUM, EMIT CHANGES.
func BenchmarkTumbling10k(b *testing.B) {
	p := benchPipeline(b, `CREATE STREAM clicks (k STRING, v BIGINT, at BIGINT) WITH (SOURCE='click-', TIMESTAMP='at')`,
		`SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT CHANGES`)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	buf := make([][]byte, 512)
	runBatches(b, p, "click-1", func(i int) []byte {
		j := i % 512
		buf[j] = fmt.Appendf(buf[j][:0], `{"k":%q,"v":%d,"at":%d}`, keys[i%10000], i%13, 1767225600000+int64(i))
		return buf[j]
	})
}

// BenchmarkGroupBySave is one event through a GROUP BY over 10,000 keys
// with COUNT and SUM, then the state Save of a persistent query after
// every batch of 512 (each dirty group encoded), as a persistent table
// query runs.
func BenchmarkGroupBySave(b *testing.B) {
	p := benchPipeline(b, `CREATE STREAM clicks (k STRING, v BIGINT) WITH (SOURCE='click-')`,
		`SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks GROUP BY k EMIT CHANGES`)
	data := make([][]byte, 10000)
	for i := range data {
		data[i] = fmt.Appendf(nil, `{"k":"key-%d","v":%d}`, i, i%13)
	}
	const batch = 512
	events := make([]Event, batch)
	saved := 0
	put := func(key string, val []byte) { saved += len(val) }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for j := range n {
			events[j] = Event{Stream: "click-1", Type: "Placed", Time: int64(i + j), Position: int64(i + j + 1), Version: 1, Data: data[(i+j)%len(data)]}
		}
		p.Process(events[:n])
		p.Save(put)
	}
	b.ReportMetric(float64(saved)/float64(b.N), "state-B/op")
}

// BenchmarkGroupBySaveEncoded is BenchmarkGroupBySave with the groups kept
// encoded (KeepEncoded, as a persistent query does) and at most hot of
// the 10,000 decoded between batches; the keys cycle, so with fewer than
// 10,000 a batch decodes most of the groups it touches.
func BenchmarkGroupBySaveEncoded(b *testing.B) {
	for _, hot := range []int{0, 8192, 16384} {
		b.Run(fmt.Sprintf("hot=%d", hot), func(b *testing.B) {
			p := benchPipeline(b, `CREATE STREAM clicks (k STRING, v BIGINT) WITH (SOURCE='click-')`,
				`SELECT k, COUNT(*) AS n, SUM(v) AS total FROM clicks GROUP BY k EMIT CHANGES`)
			store := p.KeepEncoded(hot)
			data := make([][]byte, 10000)
			for i := range data {
				data[i] = fmt.Appendf(nil, `{"k":"key-%d","v":%d}`, i, i%13)
			}
			const batch = 512
			events := make([]Event, batch)
			put := func(key string, val []byte) {}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				for j := range n {
					events[j] = Event{Stream: "click-1", Type: "Placed", Time: int64(i + j), Position: int64(i + j + 1), Version: 1, Data: data[(i+j)%len(data)]}
				}
				p.Process(events[:n])
				p.Save(put)
				store.Publish()
			}
		})
	}
}
