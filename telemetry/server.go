package telemetry

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fjord-data/fjord/server"
)

// ServerMetrics are the metrics of `fjord serve` (package server):
//
//	fjord_server_appends_total{code}             Append calls, by status code ("ok" for success)
//	fjord_server_appended_events_total           events in successful appends
//	fjord_server_appended_bytes_total            data and metadata bytes in successful appends
//	fjord_server_append_duration_seconds         Append latency (every call)
//	fjord_server_reads_total{method,code}        ReadStream and ReadAll calls
//	fjord_server_read_events_total{method}       events those calls returned
//	fjord_server_subscribers{protocol}           live subscriptions (rpc or sse)
//	fjord_server_delivered_events_total{protocol} events sent to subscribers
//	fjord_server_subscriber_lag_max_events       the largest head − last delivered position of a live $all subscription
//	fjord_server_subscriber_lag_sum_events       the sum of those lags
//	fjord_store_head_position                    the store's head
//
// The lag and head metrics appear once WatchSubscribers is called.
type ServerMetrics struct {
	reg                 *prometheus.Registry
	appends             *prometheus.CounterVec
	appendedEvents      prometheus.Counter
	appendedBytes       prometheus.Counter
	appendDuration      prometheus.Histogram
	reads, readEvents   *prometheus.CounterVec
	subscribers         *prometheus.GaugeVec
	delivered           *prometheus.CounterVec
	subscriberStatsWait time.Duration
}

// NewServerMetrics registers the server's metrics in reg. It fails if they
// are registered already.
func NewServerMetrics(reg *Registry) (*ServerMetrics, error) {
	m := &ServerMetrics{
		reg: reg.reg,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_server_appends_total",
			Help: "Append calls, by status code (ok for success)."}, []string{"code"}),
		appendedEvents: prometheus.NewCounter(prometheus.CounterOpts{Name: "fjord_server_appended_events_total",
			Help: "Events appended by successful Append calls."}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "fjord_server_appended_bytes_total",
			Help: "Data and metadata bytes of events appended by successful Append calls."}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fjord_server_append_duration_seconds",
			Help:    "Append call latency, from decoded request to response.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}), // 0.1 ms … 3.3 s
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_server_reads_total",
			Help: "ReadStream and ReadAll calls (one page each), by method and status code."}, []string{"method", "code"}),
		readEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_server_read_events_total",
			Help: "Events returned by ReadStream and ReadAll calls."}, []string{"method"}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fjord_server_subscribers",
			Help: "Live subscriptions, by protocol (rpc: Subscribe; sse: Server-Sent Events)."}, []string{"protocol"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_server_delivered_events_total",
			Help: "Events sent to subscribers, by protocol."}, []string{"protocol"}),
		subscriberStatsWait: 2 * time.Second,
	}
	for _, c := range []prometheus.Collector{m.appends, m.appendedEvents, m.appendedBytes, m.appendDuration,
		m.reads, m.readEvents, m.subscribers, m.delivered} {
		if err := reg.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Hooks returns server hooks that update m.
func (m *ServerMetrics) Hooks() server.Hooks {
	return server.Hooks{
		OnAppend: func(i server.AppendInfo) {
			m.appends.WithLabelValues(i.Code).Inc()
			m.appendDuration.Observe(i.Duration.Seconds())
			if i.Code == "ok" {
				m.appendedEvents.Add(float64(i.Events))
				m.appendedBytes.Add(float64(i.Bytes))
			}
		},
		OnRead: func(i server.ReadInfo) {
			m.reads.WithLabelValues(i.Method, i.Code).Inc()
			m.readEvents.WithLabelValues(i.Method).Add(float64(i.Events))
		},
		OnSubscribe:   func(i server.SubscribeInfo) { m.subscribers.WithLabelValues(i.Protocol).Inc() },
		OnUnsubscribe: func(i server.SubscribeInfo) { m.subscribers.WithLabelValues(i.Protocol).Dec() },
		OnDeliver:     func(i server.SubscribeInfo) { m.delivered.WithLabelValues(i.Protocol).Inc() },
	}
}

// WatchSubscribers reports the subscriber lag and the store's head, asking
// stats (usually (*server.Server).SubscriberStats) at every scrape.
func (m *ServerMetrics) WatchSubscribers(stats func(context.Context) (server.SubscriberStats, error)) error {
	return m.reg.Register(&lagCollector{stats: stats, wait: m.subscriberStatsWait,
		lagMaxDesc: prometheus.NewDesc("fjord_server_subscriber_lag_max_events",
			"The largest lag of a live $all subscription: the head minus the position it last sent.", nil, nil),
		lagSumDesc: prometheus.NewDesc("fjord_server_subscriber_lag_sum_events",
			"The sum of the lags of the live $all subscriptions.", nil, nil),
		headDesc: prometheus.NewDesc("fjord_store_head_position", "The position of the store's last event.", nil, nil),
	})
}

// lagCollector asks for subscriber stats at scrape time.
type lagCollector struct {
	stats                            func(context.Context) (server.SubscriberStats, error)
	wait                             time.Duration
	lagMaxDesc, lagSumDesc, headDesc *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lagMaxDesc
	ch <- c.lagSumDesc
	ch <- c.headDesc
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.wait)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		err = errors.Join(errors.New("telemetry: subscriber stats"), err)
		ch <- prometheus.NewInvalidMetric(c.lagMaxDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.lagMaxDesc, prometheus.GaugeValue, float64(st.MaxLag))
	ch <- prometheus.MustNewConstMetric(c.lagSumDesc, prometheus.GaugeValue, float64(st.SumLag))
	ch <- prometheus.MustNewConstMetric(c.headDesc, prometheus.GaugeValue, float64(st.Head))
}
