/* C smoke test of the RapidMQ C ABI, end to end against a real broker.
 *
 * Usage: smoke <grpc endpoint, e.g. http://127.0.0.1:40123>
 * Built and run by ffi/tests/smoke.rs (cargo test -p rapidmq-ffi), which starts the broker with
 * the shared harness. Exits 0 and prints "smoke: ok" when every check holds. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rapidmq.h"

#define CHECK(cond, what)                                                            \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "smoke: check failed at line %d: %s\n", __LINE__, what);       \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

static RapidmqStr str(const char *s) {
  RapidmqStr out = {s, strlen(s)};
  return out;
}

/* Fails the program with the error's code and message unless the call succeeded. */
static void ok(RapidmqStatus status, RapidmqError *err, const char *what) {
  if (status != RAPIDMQ_STATUS_OK) {
    fprintf(stderr, "smoke: %s failed: code %u kind %d: %.*s\n", what, err->code, (int)err->kind,
            (int)err->message.len, (const char *)err->message.ptr);
    exit(1);
  }
}

/* The callback form of send: records the delivery and wakes the main thread. */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t done;
  int completed;
  RapidmqStatus status;
  uint64_t offset;
} SendWaiter;

static void on_sent(void *user_data, const RapidmqSendResult *result) {
  SendWaiter *w = (SendWaiter *)user_data;
  pthread_mutex_lock(&w->lock);
  w->status = result->status;
  w->offset = result->delivery.offset;
  w->completed = 1;
  pthread_cond_signal(&w->done);
  pthread_mutex_unlock(&w->lock);
}

/* Triggers a cancellation handle from another thread once the main thread is polling. */
static void *trigger_later(void *arg) {
  rapidmq_cancel_trigger((const RapidmqCancel *)arg);
  return NULL;
}

int main(int argc, char **argv) {
  CHECK(argc == 2, "usage: smoke <endpoint>");
  RapidmqError err = {0};

  /* The error-code table is visible to bindings. */
  CHECK(rapidmq_error_code_count() >= 20, "the error-code table has its codes");
  RapidmqErrorCodeInfo info;
  CHECK(rapidmq_error_code_info(0, &info) && info.code == 1001, "first code is INVALID_ARGUMENT");
  CHECK(!rapidmq_error_code_info(100000, &info), "out-of-range index is refused");

  RapidmqRuntime *runtime = NULL;
  ok(rapidmq_runtime_new(2, &runtime, &err), &err, "runtime_new");

  RapidmqClientConfig config;
  CHECK(rapidmq_client_config_default(&config), "client defaults");
  RapidmqStr endpoint = str(argv[1]);
  config.endpoints = &endpoint;
  config.endpoints_len = 1;
  RapidmqClient *client = NULL;
  ok(rapidmq_client_connect(runtime, &config, NULL, &client, &err), &err, "connect");

  /* Admin: create a topic; an unknown topic fails with its stable code. */
  RapidmqTopicConfig topic_config = {0};
  topic_config.partitions = 1;
  RapidmqTopicInfo *topic = NULL;
  ok(rapidmq_admin_create_topic(client, str("smoke"), &topic_config, NULL, &topic, &err), &err,
     "create_topic");
  CHECK(topic->partitions_len == 1, "one partition");
  CHECK(topic->name.len == 5 && memcmp(topic->name.ptr, "smoke", 5) == 0, "topic name");
  rapidmq_topic_info_free(topic);

  RapidmqTopicInfo *missing = NULL;
  CHECK(rapidmq_admin_describe_topic(client, str("no-such-topic"), NULL, &missing, &err) ==
            RAPIDMQ_STATUS_ERROR,
        "describing an unknown topic fails");
  CHECK(err.code == 2001 && err.kind == RAPIDMQ_ERROR_KIND_BROKER && !err.retriable,
        "TOPIC_NOT_FOUND");
  CHECK(missing == NULL && err.message.len > 0, "no result, a message");
  rapidmq_error_clear(&err);
  CHECK(err.code == 0 && err.message.ptr == NULL, "clear resets the error");

  /* Produce: the blocking form, with a key and a header. */
  RapidmqProducerConfig producer_config;
  CHECK(rapidmq_producer_config_default(&producer_config), "producer defaults");
  CHECK(producer_config.linger_us == 5000 && producer_config.idempotence, "core defaults");
  producer_config.topic = str("smoke");
  RapidmqProducer *producer = NULL;
  ok(rapidmq_producer_new(client, &producer_config, NULL, &producer, &err), &err, "producer_new");

  RapidmqHeaderIn header = {str("trace"), str("abc")};
  for (int i = 0; i < 3; i++) {
    char value[16];
    snprintf(value, sizeof value, "m%d", i);
    RapidmqMessage message = {0};
    message.value = str(value);
    message.has_key = true;
    message.key = str("k");
    message.headers = &header;
    message.headers_len = 1;
    RapidmqDelivery delivery;
    ok(rapidmq_producer_send_wait(producer, &message, NULL, &delivery, &err), &err, "send_wait");
    CHECK(delivery.status == RAPIDMQ_SEND_APPENDED && delivery.offset == (uint64_t)i,
          "dense offsets from 0");
  }

  /* Produce: the callback form. */
  SendWaiter waiter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
  RapidmqMessage last = {0};
  last.value = str("m3");
  ok(rapidmq_producer_send(producer, &last, NULL, on_sent, &waiter, &err), &err, "send");
  ok(rapidmq_producer_flush(producer, NULL, &err), &err, "flush");
  pthread_mutex_lock(&waiter.lock);
  while (!waiter.completed) pthread_cond_wait(&waiter.done, &waiter.lock);
  pthread_mutex_unlock(&waiter.lock);
  CHECK(waiter.status == RAPIDMQ_STATUS_OK && waiter.offset == 3, "the callback got offset 3");

  /* try_send checks its out-parameter before it queues anything: had it queued the message, it
     would be offset 4, which the consumer below never reads, and the lag would not be 0. */
  RapidmqMessage refused = {0};
  refused.value = str("never sent");
  CHECK(rapidmq_producer_try_send(producer, &refused, on_sent, &waiter, NULL, &err) ==
                RAPIDMQ_STATUS_ERROR &&
            err.code == 1001,
        "try_send without somewhere to say whether it queued is refused");
  rapidmq_error_clear(&err);

  RapidmqProducerStats stats;
  CHECK(rapidmq_producer_stats(producer, &stats) && stats.messages_acked == 4, "4 acked");
  ok(rapidmq_producer_close(producer, NULL, &err), &err, "producer_close");
  CHECK(rapidmq_producer_send_wait(producer, &last, NULL, NULL, &err) == RAPIDMQ_STATUS_ERROR &&
            err.kind == RAPIDMQ_ERROR_KIND_CLOSED && err.code == 1001,
        "a closed producer refuses sends");
  rapidmq_error_clear(&err);
  rapidmq_producer_free(producer);

  /* Consume everything from the start. */
  RapidmqConsumerConfig consumer_config;
  CHECK(rapidmq_consumer_config_default(&consumer_config), "consumer defaults");
  consumer_config.topic = str("smoke");
  consumer_config.subscription = str("smoke-sub");
  consumer_config.start.kind = RAPIDMQ_START_EARLIEST;
  RapidmqConsumer *consumer = NULL;
  ok(rapidmq_consumer_new(client, &consumer_config, NULL, &consumer, &err), &err, "consumer_new");
  size_t received = 0;
  while (received < 4) {
    RapidmqMessageBatch *batch = NULL;
    ok(rapidmq_consumer_poll(consumer, 10, 10000, NULL, &batch, &err), &err, "poll");
    CHECK(batch->len > 0, "poll made progress within 10 s");
    for (size_t i = 0; i < batch->len; i++) {
      const RapidmqReceivedMessage *m = &batch->items[i];
      char expected[16];
      snprintf(expected, sizeof expected, "m%zu", received);
      CHECK(m->offset == received, "in order");
      CHECK(m->value.len == strlen(expected) && memcmp(m->value.ptr, expected, m->value.len) == 0,
            "the value sent");
      if (received < 3) {
        CHECK(m->has_key && m->key.len == 1 && m->headers_len == 1, "key and header kept");
        CHECK(m->headers[0].value.len == 3 && memcmp(m->headers[0].value.ptr, "abc", 3) == 0,
              "header value");
      }
      ok(rapidmq_consumer_ack(consumer, m->partition, m->offset, &err), &err, "ack");
      received++;
    }
    rapidmq_message_batch_free(batch);
  }

  /* Cancellation interrupts a blocking poll that would otherwise wait 60 s. */
  RapidmqCancel *cancel = rapidmq_cancel_new();
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, trigger_later, cancel) == 0, "thread");
  RapidmqMessageBatch *none = NULL;
  RapidmqStatus polled = rapidmq_consumer_poll(consumer, 10, 60000, cancel, &none, &err);
  pthread_join(thread, NULL);
  CHECK(polled == RAPIDMQ_STATUS_ERROR && err.kind == RAPIDMQ_ERROR_KIND_CANCELLED,
        "a cancelled poll returns CANCELLED");
  CHECK(none == NULL, "nothing returned");
  rapidmq_error_clear(&err);
  rapidmq_cancel_free(cancel);

  /* nack is a queue-mode feature. */
  CHECK(rapidmq_consumer_nack(consumer, 0, 0, 10, &err) == RAPIDMQ_STATUS_ERROR &&
            err.kind == RAPIDMQ_ERROR_KIND_UNSUPPORTED,
        "nack in stream mode is unsupported");
  rapidmq_error_clear(&err);

  ok(rapidmq_consumer_close(consumer, NULL, &err), &err, "consumer_close");
  rapidmq_consumer_free(consumer);
  uint64_t lag = 99;
  ok(rapidmq_admin_lag(client, str("smoke"), str("smoke-sub"), NULL, &lag, &err), &err, "lag");
  CHECK(lag == 0, "everything acked was committed on close");

  ok(rapidmq_client_close(client, NULL, &err), &err, "client_close");
  rapidmq_client_free(client);
  rapidmq_runtime_shutdown(runtime, 5000);
  rapidmq_runtime_free(runtime);
  printf("smoke: ok\n");
  return 0;
}
