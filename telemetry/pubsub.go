package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fjord-data/fjord/pubsub"
)

// PubSubMetrics are the metrics of pubsub topics and routers:
//
//	fjord_pubsub_published_messages_total{topic,result}   messages of Publish calls (result ok or error)
//	fjord_pubsub_publish_duration_seconds{topic}          Publish latency, retries included
//	fjord_pubsub_send_retries_total{topic}                 driver Sends that failed and were retried
//	fjord_pubsub_handled_messages_total{consumer,result}   handler attempts by result (ok or retry)
//	fjord_pubsub_handle_duration_seconds{consumer}         handler attempt latency
//	fjord_pubsub_parked_messages_total{consumer}           messages parked (dead-lettered)
//	fjord_pubsub_park_errors_total{consumer}               failed attempts to park (retried)
//	fjord_pubsub_unhandled_messages_total{consumer}        messages acknowledged with no handler
//	fjord_pubsub_ack_errors_total{consumer}                failed acks and nacks (the broker redelivers)
//	fjord_pubsub_receive_errors_total{consumer}            failed receives
type PubSubMetrics struct {
	published, handled                     *prometheus.CounterVec
	publishDuration, handleDuration        *prometheus.HistogramVec
	retries, parked, parkErrors, unhandled *prometheus.CounterVec
	ackErrors, receiveErrors               *prometheus.CounterVec
}

// NewPubSubMetrics registers the pubsub metrics in reg. It fails if they
// are registered already.
func NewPubSubMetrics(reg *Registry) (*PubSubMetrics, error) {
	counter := func(name, help string, label ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fjord_pubsub_" + name, Help: help}, label)
	}
	latency := func(name, help, label string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fjord_pubsub_" + name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{label}) // 0.1 ms … 3.3 s
	}
	m := &PubSubMetrics{
		published:       counter("published_messages_total", "Messages of Publish calls, by topic and result (ok or error).", "topic", "result"),
		publishDuration: latency("publish_duration_seconds", "Publish call latency, retries included.", "topic"),
		retries:         counter("send_retries_total", "Driver sends that failed and were retried.", "topic"),
		handled:         counter("handled_messages_total", "Handler attempts, by consumer and result (ok or retry).", "consumer", "result"),
		handleDuration:  latency("handle_duration_seconds", "Handler attempt latency.", "consumer"),
		parked:          counter("parked_messages_total", "Messages parked in the dead-letter destination.", "consumer"),
		parkErrors:      counter("park_errors_total", "Failed attempts to park a message (retried).", "consumer"),
		unhandled:       counter("unhandled_messages_total", "Messages acknowledged with no handler.", "consumer"),
		ackErrors:       counter("ack_errors_total", "Failed acks and nacks; the broker delivers those messages again.", "consumer"),
		receiveErrors:   counter("receive_errors_total", "Failed receives from the broker.", "consumer"),
	}
	for _, c := range []prometheus.Collector{m.published, m.publishDuration, m.retries, m.handled, m.handleDuration,
		m.parked, m.parkErrors, m.unhandled, m.ackErrors, m.receiveErrors} {
		if err := reg.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// TopicHooks returns hooks for a pubsub.Topic publishing to topic.
func (m *PubSubMetrics) TopicHooks(topic string) pubsub.TopicHooks {
	ok, failed := m.published.WithLabelValues(topic, "ok"), m.published.WithLabelValues(topic, "error")
	duration, retries := m.publishDuration.WithLabelValues(topic), m.retries.WithLabelValues(topic)
	return pubsub.TopicHooks{
		OnPublish: func(i pubsub.PublishInfo) {
			duration.Observe(i.Duration.Seconds())
			if i.Err != nil {
				failed.Add(float64(i.Messages))
				return
			}
			ok.Add(float64(i.Messages))
		},
		OnSend: func(i pubsub.SendInfo) {
			if i.Err != nil && i.RetryIn > 0 {
				retries.Inc()
			}
		},
	}
}

// RouterHooks returns hooks for a pubsub.Router consuming as consumer.
func (m *PubSubMetrics) RouterHooks(consumer string) pubsub.RouterHooks {
	ok, retry := m.handled.WithLabelValues(consumer, "ok"), m.handled.WithLabelValues(consumer, "retry")
	duration := m.handleDuration.WithLabelValues(consumer)
	parked, parkErrors := m.parked.WithLabelValues(consumer), m.parkErrors.WithLabelValues(consumer)
	return pubsub.RouterHooks{
		OnHandled: func(i pubsub.HandleInfo) {
			ok.Add(float64(len(i.Messages)))
			duration.Observe(i.Duration.Seconds())
		},
		OnRetry: func(i pubsub.HandleInfo) {
			retry.Add(float64(len(i.Messages)))
			duration.Observe(i.Duration.Seconds())
		},
		OnParked: func(i pubsub.ParkInfo) {
			if i.Err != nil {
				parkErrors.Inc()
				return
			}
			parked.Inc()
		},
		OnUnhandled:    func(*pubsub.Message) { m.unhandled.WithLabelValues(consumer).Inc() },
		OnAckError:     func(pubsub.AckErrorInfo) { m.ackErrors.WithLabelValues(consumer).Inc() },
		OnReceiveError: func(error) { m.receiveErrors.WithLabelValues(consumer).Inc() },
	}
}
