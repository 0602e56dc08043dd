-- The identity graph: profiles, identifiers with their evidence, merges that can be undone,
-- the cross-channel timeline, consent, and what erasure must keep (hashes only).

CREATE TABLE profiles (
    id text PRIMARY KEY,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'merged', 'erased')),
    -- No usable identifier (withheld number, junk): nothing will ever match this profile.
    ephemeral boolean NOT NULL DEFAULT false,
    display_name text,
    preferred_channel text,
    merge_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE identifiers (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    namespace text NOT NULL DEFAULT '',
    value text NOT NULL,
    -- The owner; a shared identifier (family phone, switchboard) lists its other holders in
    -- shared_holders, so the uniqueness below holds for every identifier, shared or not.
    profile_id text NOT NULL REFERENCES profiles (id),
    tier smallint NOT NULL CHECK (tier BETWEEN 1 AND 3),
    shared boolean NOT NULL DEFAULT false,
    variant_key text,
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identifiers_live_unique UNIQUE (kind, namespace, value)
);
CREATE INDEX identifiers_profile ON identifiers (profile_id);
CREATE INDEX identifiers_variant ON identifiers (variant_key) WHERE variant_key IS NOT NULL;
-- One strong id per kind per profile, ever: the database refuses what the rules must never do.
CREATE UNIQUE INDEX identifiers_one_strong_per_kind ON identifiers (profile_id, kind) WHERE tier = 3;

CREATE TABLE shared_holders (
    identifier_id bigint NOT NULL REFERENCES identifiers (id) ON DELETE CASCADE,
    profile_id text NOT NULL REFERENCES profiles (id),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (identifier_id, profile_id)
);
CREATE INDEX shared_holders_profile ON shared_holders (profile_id);

-- Every observation that linked (or only claimed) an identifier: what a split is rebuilt from.
CREATE TABLE link_evidence (
    id bigserial PRIMARY KEY,
    identifier_id bigint REFERENCES identifiers (id) ON DELETE CASCADE,
    profile_id text NOT NULL REFERENCES profiles (id),
    -- For typed claims that are not keys: the value itself, so an agent can review the suggestion.
    claimed_key text,
    source text NOT NULL,
    verified boolean NOT NULL,
    tier smallint NOT NULL,
    interaction_id text,
    observed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX link_evidence_identifier ON link_evidence (identifier_id);
CREATE INDEX link_evidence_profile ON link_evidence (profile_id);
CREATE UNIQUE INDEX link_evidence_once
    ON link_evidence (profile_id, coalesce(identifier_id, 0), coalesce(claimed_key, ''), coalesce(interaction_id, ''));

CREATE TABLE profile_aliases (
    alias_id text PRIMARY KEY REFERENCES profiles (id),
    survivor_id text NOT NULL REFERENCES profiles (id),
    merge_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profile_aliases_survivor ON profile_aliases (survivor_id);

CREATE TABLE merges (
    id text PRIMARY KEY,
    survivor_id text NOT NULL REFERENCES profiles (id),
    absorbed_id text NOT NULL REFERENCES profiles (id),
    reason text NOT NULL,
    rule_version text NOT NULL,
    decided_by text NOT NULL,
    -- Identifier ids that proved the merge, and those moved from the absorbed profile: a split moves
    -- exactly these back.
    evidence_identifier_ids bigint[] NOT NULL DEFAULT '{}',
    moved_identifier_ids bigint[] NOT NULL DEFAULT '{}',
    moved_shared_identifier_ids bigint[] NOT NULL DEFAULT '{}',
    interaction_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    split_at timestamptz,
    split_id text
);
CREATE INDEX merges_survivor ON merges (survivor_id);
CREATE INDEX merges_absorbed ON merges (absorbed_id);

CREATE TABLE suggestions (
    id bigserial PRIMARY KEY,
    profile_id text NOT NULL REFERENCES profiles (id),
    candidate_id text NOT NULL REFERENCES profiles (id),
    reason text NOT NULL,
    identifier_kind text NOT NULL,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'dismissed')),
    interaction_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz,
    CONSTRAINT suggestions_once UNIQUE (profile_id, candidate_id, reason)
);
CREATE INDEX suggestions_open ON suggestions (created_at) WHERE status = 'open';

CREATE TABLE conflicts (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    profile_id text NOT NULL REFERENCES profiles (id),
    other_profile_id text REFERENCES profiles (id),
    identifier_kind text NOT NULL,
    detail text NOT NULL,
    interaction_id text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conflicts_created ON conflicts (created_at);
CREATE UNIQUE INDEX conflicts_once
    ON conflicts (kind, profile_id, coalesce(other_profile_id, ''), identifier_kind, coalesce(interaction_id, ''));

CREATE TABLE timeline (
    id bigserial PRIMARY KEY,
    -- The source's own id (interaction, reply, offer, a CRM's record id): recording twice is a no-op.
    entry_id text NOT NULL,
    profile_id text NOT NULL REFERENCES profiles (id),
    -- Where the entry was first recorded, and through which identifier: a split re-points by these.
    origin_profile_id text NOT NULL,
    identifier_id bigint REFERENCES identifiers (id) ON DELETE SET NULL,
    channel text,
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'note')),
    kind text NOT NULL,
    summary text NOT NULL,
    source text NOT NULL,
    routing_domain text,
    interaction_id text,
    data jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT timeline_entry_once UNIQUE (entry_id)
);
CREATE INDEX timeline_profile_time ON timeline (profile_id, occurred_at DESC, id DESC);

CREATE TABLE consents (
    profile_id text NOT NULL REFERENCES profiles (id),
    address_key text NOT NULL,
    -- '' = every channel.
    channel text NOT NULL DEFAULT '',
    opted_out boolean NOT NULL,
    reason text NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (address_key, channel)
);
CREATE INDEX consents_profile ON consents (profile_id);

-- Erased identifiers, hashed: a replayed event from before the erasure cannot bring them back.
CREATE TABLE suppressions (
    hash text PRIMARY KEY,
    erased_at timestamptz NOT NULL
);

-- Who did what to which profile: ids, counts and reasons only, never an identifier or a message.
CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    action text NOT NULL,
    profile_id text NOT NULL,
    other_profile_ids text[] NOT NULL DEFAULT '{}',
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_profile ON audit_log (profile_id, at);

-- Events decided in a transaction, published after it commits (and again after a crash): the effects
-- and the intent to publish them commit together.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    source_id text NOT NULL,
    topic text NOT NULL,
    key text,
    value bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_source ON outbox (source_id);
CREATE INDEX outbox_created ON outbox (created_at);
