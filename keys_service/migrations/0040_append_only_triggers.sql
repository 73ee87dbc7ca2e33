-- Append-only for real (issue 20, contract §9): the keys audit trail refuses UPDATE, DELETE and TRUNCATE
-- for every role, the owner included, until the owner drops or disables the trigger explicitly (DDL).
-- The runtime role already lacks those privileges (0002); the trigger is what binds everyone else.
-- Only audit_events is append-only here: api_keys, access_tokens, merchant keys and the usage counters all
-- have columns that legitimately move (revoked_at, last_used_at, counts).

CREATE FUNCTION refuse_append_only_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'the owner must drop or disable the trigger explicitly to change history';
END $$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();
