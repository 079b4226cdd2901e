// Package pubsub publishes and consumes business events as CloudEvents over
// message brokers (NATS JetStream, RabbitMQ, Kafka, STOMP/ActiveMQ, or in
// process), through the small seam in pubsub/driver.
package pubsub
