package rapidmq

// LoseAcks makes p discard its next n publish answers, as if the connection broke before the
// ack arrived (fault injection for the retry tests; not part of the API).
func LoseAcks(p *Producer, n uint32) { p.testingLoseAcks(n) }
