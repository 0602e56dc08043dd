-- channel-gateway: web chat replies kept per visitor, and replay tokens bound to their message.

-- Replies to web chat visitors, in order. ``cursor`` is global and only grows (a sequence), so a
-- visitor's stream resumes with "everything after cursor N" on any replica, after any reconnect.
CREATE TABLE webchat_messages (
    cursor bigserial PRIMARY KEY,
    visitor_id text NOT NULL,
    reply_id text NOT NULL UNIQUE,
    frame jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webchat_messages_visitor ON webchat_messages (visitor_id, cursor);
CREATE INDEX webchat_messages_created ON webchat_messages (created_at);

-- A one-time vendor token (Mailgun) may come back with the same message (a redelivery), never with
-- another one: remember which message first carried it.
ALTER TABLE replay_guard ADD COLUMN message text NOT NULL DEFAULT '';
