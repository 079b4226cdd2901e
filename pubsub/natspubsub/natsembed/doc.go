// Package natsembed runs a NATS server with JetStream inside the process,
// for `fjord serve`, tests and benchmarks: by default it opens no port
// (clients connect in process) and keeps its store under a directory of
// your choosing, so a restart on the same directory finds every message
// that was stored.
//
//	srv, err := natsembed.Start(ctx, &natsembed.Options{Dir: "data/nats"})
//	if err != nil {
//		return err
//	}
//	defer srv.Close()
//	nc, err := srv.Connect()
//	if err != nil {
//		return err
//	}
//	defer nc.Close()
//	topic, err := natspubsub.OpenTopic(ctx, nc, "orders.placed", &natspubsub.TopicOptions{
//		Stream: &jetstream.StreamConfig{Name: "ORDERS"},
//	})
//
// Give Options.Listen ("127.0.0.1:0" for a free port) to let other
// processes in; Server.ClientURL names the port.
package natsembed
