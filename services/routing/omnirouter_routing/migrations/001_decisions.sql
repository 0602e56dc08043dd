-- Every routing decision, for audit and reporting. Written in the same consumer step that publishes it
-- to omni.routing.decisions and before the inbox offset is committed; a replay re-inserts the same
-- deterministic event ids, which ON CONFLICT DO NOTHING ignores.
CREATE TABLE decisions (
    event_id text PRIMARY KEY,
    type text NOT NULL,
    routing_domain text NOT NULL,
    task_id text,
    agent_id text,
    queue text,
    payload jsonb NOT NULL,
    decided_at timestamptz NOT NULL,
    -- The inbox event that caused the decision, and where it sits in the log (for replays and audits).
    causation_id text NOT NULL,
    inbox_partition integer NOT NULL,
    inbox_offset bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX decisions_task ON decisions (task_id, decided_at) WHERE task_id IS NOT NULL;
CREATE INDEX decisions_agent ON decisions (agent_id, decided_at) WHERE agent_id IS NOT NULL;
CREATE INDEX decisions_queue ON decisions (routing_domain, queue, decided_at);
CREATE INDEX decisions_decided_at ON decisions (decided_at);
