-- WeChat's own times of a success (docs/books.md §2), in milliseconds since the epoch (UTC):
-- a payment's `time_end` from the verified SUCCESS reply (micropay or orderquery), and a
-- refund's `refund_success_time_$n` from refundquery. NULL until known, or when the reply
-- did not carry it; the books then fall back to the proxy's own times.
ALTER TABLE payments ADD COLUMN wechat_paid_at BIGINT;
ALTER TABLE refunds ADD COLUMN wechat_refunded_at BIGINT;
