#ifndef TAPE_CRDKAFKA_SHIM_H
#define TAPE_CRDKAFKA_SHIM_H
// The header of the librdkafka that scripts/build_librdkafka.sh builds (never a system one).
#if __has_include("../../.deps/librdkafka/include/librdkafka/rdkafka.h")
#include "../../.deps/librdkafka/include/librdkafka/rdkafka.h"
#else
#error "librdkafka is not built: run `make setup` (scripts/build_librdkafka.sh builds it into .deps/librdkafka)"
#endif

// rd_kafka_producev is variadic, which Swift cannot call: one fixed-argument form of it. The payload and
// key are copied (RD_KAFKA_MSG_F_COPY); `headers` (may be NULL) belongs to librdkafka once this returns
// RD_KAFKA_RESP_ERR_NO_ERROR, and stays the caller's otherwise.
static inline rd_kafka_resp_err_t tape_rd_kafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *topic, int32_t partition,
                                                        const void *key, size_t key_size,
                                                        const void *value, size_t value_size,
                                                        rd_kafka_headers_t *headers, int64_t timestamp_ms,
                                                        int flags) {
    if (headers == NULL) {
        return rd_kafka_producev(rk, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY | flags),
                                 RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_VALUE((void *)value, value_size),
                                 RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
    }
    return rd_kafka_producev(rk, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY | flags),
                             RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_VALUE((void *)value, value_size),
                             RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
}
#endif
