package kafkapubsub

import "github.com/fjord-data/fjord/pubsub/driver"

// PartitionOf returns the partition of a received message's AckID.
func PartitionOf(id driver.AckID) int32 { return id.(ackID).partition }
