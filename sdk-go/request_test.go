package rapidmq_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// header returns the last value of the header called name, and whether there is one.
func header(headers []rapidmq.Header, name string) (string, bool) {
	for i := len(headers) - 1; i >= 0; i-- {
		if headers[i].Key == name {
			return string(headers[i].Value), true
		}
	}
	return "", false
}

// firstMessage reads offset 0 of partition 0 of topic, waiting for it: a request that timed
// out was still queued for sending, but may not have reached the broker yet.
func firstMessage(t *testing.T, client *rapidmq.Client, topic string) rapidmq.ReceivedMessage {
	t.Helper()
	res, err := client.Fetch(ctxT(t), topic, 0, 0, 1, 30*time.Second)
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("fetch: %v %+v", err, res)
	}
	return res.Messages[0]
}

// C27 request-reply: concurrent requests each get their own reply.
func TestConcurrentRequestsEachGetTheirOwnReply(t *testing.T) {
	const requests = 20
	b, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	responder := connect(t, b)
	q := worker(t, responder, queueConfig(topic, "responders", rapidmq.QueueSettings{}))
	answered := make(chan error, 1)
	go func() {
		for n := 0; n < requests; {
			got, err := q.Poll(ctxT(t), requests-n, 30*time.Second)
			if err != nil {
				answered <- err
				return
			}
			for _, d := range got {
				i, _ := header(d.Headers, "n")
				reply := rapidmq.Message{
					Value:   []byte(strings.ToUpper(string(d.Value))),
					Headers: []rapidmq.Header{{Key: "n", Value: []byte(i)}},
				}
				if _, err := responder.Reply(ctxT(t), d.ReceivedMessage, reply); err != nil {
					answered <- err
					return
				}
				if err := q.Ack(d); err != nil {
					answered <- err
					return
				}
				n++
			}
		}
		answered <- nil
	}()

	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			request := rapidmq.Message{
				Value:   []byte(fmt.Sprintf("ask-%d", i)),
				Headers: []rapidmq.Header{{Key: "n", Value: []byte(fmt.Sprint(i))}},
			}
			reply, err := client.Request(ctxT(t), topic, request, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			n, _ := header(reply.Headers, "n")
			_, hasID := header(reply.Headers, rapidmq.CorrelationIDHeader)
			switch {
			case string(reply.Value) != fmt.Sprintf("ASK-%d", i):
				errs <- fmt.Errorf("reply %d: value %q", i, reply.Value)
			case n != fmt.Sprint(i):
				errs <- fmt.Errorf("reply %d went to request %s", i, n)
			case !hasID || !strings.HasPrefix(reply.Topic, "_inbox."):
				errs <- fmt.Errorf("reply %d not from an inbox: %+v", i, reply)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}

// C27 request-reply: no responder is a timeout, and a late reply is dropped.
func TestARequestNobodyAnswersTimesOutAndALateReplyIsDropped(t *testing.T) {
	b, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	started := time.Now()
	_, err := client.Request(ctxT(t), topic, text("anyone?"), 300*time.Millisecond)
	if !errors.Is(err, rapidmq.ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	if elapsed := time.Since(started); elapsed < 300*time.Millisecond {
		t.Fatalf("timed out after %v, before the timeout", elapsed)
	}

	responder := connect(t, b)
	if _, err := responder.Reply(ctxT(t), firstMessage(t, client, topic), text("late")); err != nil {
		t.Fatal(err)
	}
	cfg := rapidmq.NewConsumerConfig(topic, "s")
	cfg.Start = rapidmq.AtOffset(1)
	c := subscribe(t, responder, cfg)
	answered := make(chan error, 1)
	go func() {
		got := pollUntil(t, c, 1, 1)
		_, err := responder.Reply(ctxT(t), got[0], text("on time"))
		answered <- err
	}()
	reply, err := client.Request(ctxT(t), topic, text("again"), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(reply.Value) != "on time" {
		t.Fatalf("got the reply %q", reply.Value)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
}

// C27 request-reply: bad input.
func TestAMessageThatIsNoRequestCannotBeRepliedTo(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	sendAll(t, client, topic, text("plain"))
	_, err := client.Reply(ctxT(t), firstMessage(t, client, topic), text("x"))
	if !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("reply to a plain message: %v", err)
	}
	_, err = client.Request(ctxT(t), topic, text("q"), 0)
	if !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("zero timeout: %v", err)
	}
	_, err = client.Request(ctxT(t), "no-such-topic", text("q"), 5*time.Second)
	if !errors.Is(err, rapidmq.ErrTopicNotFound) {
		t.Fatalf("missing topic: %v", err)
	}
}

// C27 request-reply: closing the requester deletes its inbox.
func TestClosingTheRequesterDeletesItsInbox(t *testing.T) {
	b, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	requester := connect(t, b)
	if _, err := requester.Request(ctxT(t), topic, text("q"), 100*time.Millisecond); !errors.Is(err, rapidmq.ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	request := firstMessage(t, client, topic)
	inbox, ok := header(request.Headers, rapidmq.ReplyToHeader)
	if !ok {
		t.Fatalf("no reply-to header: %+v", request.Headers)
	}
	if _, err := client.Admin().DescribeTopic(ctxT(t), inbox); err != nil {
		t.Fatalf("the inbox should exist while in use: %v", err)
	}
	if err := requester.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Admin().DescribeTopic(ctxT(t), inbox); !errors.Is(err, rapidmq.ErrTopicNotFound) {
		t.Fatalf("inbox after close: %v", err)
	}
	if _, err := client.Reply(ctxT(t), request, text("too late")); !errors.Is(err, rapidmq.ErrTopicNotFound) {
		t.Fatalf("reply after close: %v", err)
	}
}
