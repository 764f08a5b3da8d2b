-- 0005: request budgets every replica shares (`RequestBudgets`): a tracker key's window is
-- spent through grants of slots kept here, so replicas together never exceed it.
-- One row per key: exchanges for the key take turns on it (SELECT … FOR UPDATE), and a
-- pause (the tracker refused the whole key) holds every grant until it ends.
CREATE TABLE budget_keys (
    scope        text PRIMARY KEY,
    paused_until timestamptz
);
-- Grants of slots: counted from `granted_at` until one window after `done_at` (the end of
-- their last request), or a cap after `granted_at` when never released (a dead holder).
CREATE TABLE budget_grants (
    id         bigserial PRIMARY KEY,
    scope      text NOT NULL,
    owner      text NOT NULL,
    token      text NOT NULL,
    holder     text NOT NULL,
    n          integer NOT NULL CHECK (n > 0),
    granted_at timestamptz NOT NULL,
    done_at    timestamptz
);
CREATE INDEX budget_grants_by_scope ON budget_grants (scope);
-- What each holder's owners wait for, renewed at every exchange: the fair split keeps their
-- share free for them while it is fresh.
CREATE TABLE budget_demand (
    scope   text NOT NULL,
    holder  text NOT NULL,
    owner   text NOT NULL,
    waiting integer NOT NULL,
    seen_at timestamptz NOT NULL,
    PRIMARY KEY (scope, holder, owner)
);
