// Package kafkapubsub is the Apache Kafka driver for package pubsub, built
// on franz-go (kgo).
//
// A Topic produces to one Kafka topic; a Subscription is one member of a
// consumer group on one topic. OpenTopic and OpenSubscription create their
// own clients from seed brokers; NewTopic uses a client the caller owns.
// CreateTopic and DeleteTopic manage topics (partitions, replication
// factor, configs) through the admin API.
//
//	seeds := []string{"kafka-1:9092", "kafka-2:9092", "kafka-3:9092"}
//	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
//	if err != nil {
//		return err
//	}
//	defer admin.Close()
//	err = kafkapubsub.CreateTopic(ctx, admin, "shop.orders",
//		kafkapubsub.TopicConfig{Partitions: 12, ReplicationFactor: 3,
//			Configs: map[string]string{"min.insync.replicas": "2"}})
//	if err != nil && !errors.Is(err, kafkapubsub.ErrTopicExists) {
//		return err
//	}
//	t, err := kafkapubsub.OpenTopic(seeds, "shop.orders", nil)
//	if err != nil {
//		return err
//	}
//	topic := pubsub.NewTopic(t, nil)
//	defer topic.Close()
//	sub, err := kafkapubsub.OpenSubscription(seeds, "billing", "shop.orders", nil)
//	if err != nil {
//		return err
//	}
//	defer sub.Close()
//	r := pubsub.NewRouter(sub, &pubsub.RouterOptions{Consumer: "billing", Topic: "shop.orders"})
//
// # Wire format
//
// Records follow the CloudEvents Kafka protocol binding in binary content
// mode: the data is the record value as is (no data: a null value), the
// "datacontenttype" attribute is the "content-type" header, every other
// attribute is a "ce_<name>" header. The message's Key is the record key,
// and also the "ce_partitionkey" extension, as the binding's key mapper
// says (a received ce_partitionkey equal to the key is not repeated in the
// attributes). PublishTime is the record timestamp.
//
// # Delivery
//
// Send produces a batch with acks=all through an idempotent producer (no
// duplicates or reordering from the client's own retries) without
// lingering, and returns when every record is acknowledged or ctx ends.
// Records of one key go to one partition, so they keep their order.
//
// A Subscription commits offsets itself. Kafka keeps one committed offset
// per partition, so Ack commits the lowest offset not yet acknowledged —
// never past an unacknowledged message — and writes the offsets
// acknowledged above it into the commit's metadata; whichever member next
// owns the partition skips those. So after Close, a crash or a rebalance,
// every unacknowledged message comes again and no acknowledged one does
// (up to about 3 KB of metadata per partition: acknowledgements beyond
// that come again, at least once).
//
// Kafka has no per-message negative acknowledgement. Nack marks messages
// pending and seeks their partitions back to the lowest pending offset;
// the records in between are fetched again and only the pending ones are
// handed out (see Subscription). When a rebalance revokes partitions, the
// Subscription commits their acknowledgements and forgets their messages
// in flight, which the next owner receives; lost partitions (a member
// thrown out of the group) are forgotten without a commit.
//
// Features: OrderedKeys and Redelivery. A nacked message comes back after
// the later messages of its key that were already handed out (package
// pubsub nacks only what it will not handle, when a Router stops, and
// retries failed handlers in process). Not Dedup (the idempotent producer
// drops only its own retries, not a message sent again) and not
// Deliveries (Kafka does not count deliveries: Deliveries is 0).
package kafkapubsub
