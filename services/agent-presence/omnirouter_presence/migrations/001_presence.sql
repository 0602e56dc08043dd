-- agent-presence: the roster, presence, the offers and tasks pushed to desktops, the per-agent feed of
-- pushed frames (resume and cross-replica delivery), state history, and the webhook outbox.

CREATE TABLE agents (
    id text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL DEFAULT 'human',
    skills jsonb NOT NULL DEFAULT '{}',
    capacity jsonb NOT NULL DEFAULT '{}',
    teams text[] NOT NULL DEFAULT '{}',
    routing_domain text NOT NULL DEFAULT 'default',
    enabled boolean NOT NULL DEFAULT true,
    token_hash bytea NOT NULL,
    token_rotated_at timestamptz NOT NULL DEFAULT now(),
    webhook_url text,
    webhook_secret text,
    -- What the agent chose, and the derived state last recorded in agent_state_history.
    status text NOT NULL DEFAULT 'offline',
    status_reason text,
    state text NOT NULL DEFAULT 'offline',
    state_since timestamptz NOT NULL DEFAULT now(),
    -- Refreshed while a desktop is connected (or sends heartbeats); the sweeper sets stale agents offline.
    last_seen_at timestamptz,
    -- Per-agent sequence of pushed frames; bumped under this row's lock so it commits in order.
    feed_seq bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX agents_seen ON agents (last_seen_at) WHERE status <> 'offline';

CREATE TABLE offers (
    offer_id text PRIMARY KEY,
    agent_id text NOT NULL REFERENCES agents (id),
    task_id text NOT NULL,
    customer_id text NOT NULL,
    task jsonb NOT NULL,
    expires_at timestamptz NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    -- The agent's answer (accept/reject) once sent to routing; the state changes when routing decides.
    response text,
    correlation_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX offers_pending ON offers (agent_id, task_id) WHERE state = 'pending';

CREATE TABLE tasks (
    task_id text PRIMARY KEY,
    agent_id text NOT NULL REFERENCES agents (id),
    conversation_id text NOT NULL,
    customer_id text NOT NULL,
    channel text NOT NULL,
    task jsonb NOT NULL,
    state text NOT NULL DEFAULT 'assigned',
    correlation_id text,
    assigned_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tasks_active ON tasks (agent_id) WHERE state IN ('assigned', 'wrapup');
CREATE INDEX tasks_customer ON tasks (agent_id, customer_id);

CREATE TABLE agent_feed (
    agent_id text NOT NULL REFERENCES agents (id),
    seq bigint NOT NULL,
    event_id text NOT NULL,
    frame jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, seq)
);

CREATE INDEX agent_feed_created ON agent_feed (created_at);

CREATE TABLE agent_state_history (
    id bigserial PRIMARY KEY,
    agent_id text NOT NULL REFERENCES agents (id),
    state text NOT NULL,
    status text NOT NULL,
    reason text,
    source text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX agent_state_history_agent ON agent_state_history (agent_id, changed_at);

CREATE TABLE webhook_outbox (
    id bigserial PRIMARY KEY,
    agent_id text NOT NULL REFERENCES agents (id),
    msg_id text NOT NULL UNIQUE,
    body jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);

CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE state = 'pending';
