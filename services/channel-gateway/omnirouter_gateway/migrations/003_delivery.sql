-- channel-gateway: outbound delivery. A reply is stored with everything needed to send it and to
-- dead-letter it, worked by any replica under a lease, and its final status leaves through an outbox.

ALTER TABLE deliveries
    -- Insertion order: rows of one consumed batch share created_at (one transaction), and per-customer
    -- order must follow the partition's order.
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN customer_id text NOT NULL DEFAULT '',
    ADD COLUMN reply jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN vendor text,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A worker's claim: while locked_until is in the future no other worker touches the row, and only
    -- the holder of claim_token may record the outcome (a worker whose lease ran out cannot).
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN claim_token uuid,
    -- What the status event and a dead-letter record need: the envelope's ids and the original record.
    ADD COLUMN event_id text,
    ADD COLUMN correlation_id text,
    ADD COLUMN routing_domain text,
    ADD COLUMN source_topic text,
    ADD COLUMN source_partition integer,
    ADD COLUMN source_offset bigint,
    ADD COLUMN source_key bytea,
    ADD COLUMN source_value bytea;

-- Due work, and the per-customer "is there an older pending reply" check.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_customer_pending ON deliveries (customer_id, seq) WHERE state = 'pending';

-- Status events and dead-letter records written in the transaction that decides a delivery's fate and
-- published after it; rows a crash left behind are published by the sweeper.
CREATE TABLE delivery_outbox (
    id bigserial PRIMARY KEY,
    reply_id text NOT NULL,
    topic text NOT NULL,
    key bytea,
    value bytea,
    headers jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_outbox_reply ON delivery_outbox (reply_id);
