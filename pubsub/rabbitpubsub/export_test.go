package rabbitpubsub

import "github.com/fjord-data/fjord/pubsub/driver"

// HeaderFrameSize is the size of the content header frame m is sent in.
func HeaderFrameSize(m *driver.Message) int {
	p := encode(m)
	return headerFrameSize(&p)
}

// FrameMax is the frame_max c negotiated.
func (c *Conn) FrameMax() int { return c.frameMax() }
