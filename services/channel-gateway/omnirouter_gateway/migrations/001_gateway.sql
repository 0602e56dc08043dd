-- channel-gateway: durable deduplication of vendor messages, replay protection for one-time vendor
-- tokens, the local copy of opt-outs (from identity's compacted consent topic), and outbound deliveries.

-- One row per vendor message (or status step) ever accepted. A row is a claim until published_at is
-- set; a claim older than the lease, never published, belongs to a replica that died mid-publish and
-- may be taken over, so a vendor's retry is never swallowed.
CREATE TABLE received (
    vendor text NOT NULL,
    dedup_key text NOT NULL,
    event_id text NOT NULL,
    claimed_by text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    PRIMARY KEY (vendor, dedup_key)
);
CREATE INDEX received_claimed_at ON received (claimed_at);

-- One-time values a vendor signs (Mailgun tokens, Standard Webhooks ids): seen once, refused after.
CREATE TABLE replay_guard (
    vendor text NOT NULL,
    token text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (vendor, token)
);
CREATE INDEX replay_guard_seen_at ON replay_guard (seen_at);

-- Opt-outs per address key and channel ('*' = every channel), as last published by identity-resolution.
CREATE TABLE opt_outs (
    address_key text NOT NULL,
    channel text NOT NULL,
    opted_out boolean NOT NULL,
    reason text NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (address_key, channel)
);

-- Outbound replies: one row per reply id, so a redelivered reply is never sent twice.
CREATE TABLE deliveries (
    reply_id text PRIMARY KEY,
    channel text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    vendor_message_id text,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_vendor_message ON deliveries (vendor_message_id) WHERE vendor_message_id IS NOT NULL;
