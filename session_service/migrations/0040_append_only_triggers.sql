-- Append-only for real (issue 20, contract §9). Privileges already keep the runtime role from changing these
-- tables; triggers also bind the owner role, any role granted more later, and a re-run of the bootstrap SQL.
-- To bypass them, the owner must drop the trigger or disable it explicitly (ALTER TABLE ... DISABLE TRIGGER),
-- which is DDL and shows in the logs; a superuser may also set session_replication_role = replica, which the
-- test fixture's table reset does on purpose (tests/support/database.py).
--
-- The tables, and why their rows are never legitimately changed:
--   audit_log         the audit trail: written once per step, read by people and (issue 20) hash-chained.
--   session_history   every move of a session: a move is a fact, never edited; sessions are never deleted.
--   processed_events  the first final outcome of a provider event: a redelivery reads it, nothing updates it.
-- Deliberately NOT here: sessions, outbox, quarantine (status columns move), session_alerts, payment_settings.

CREATE FUNCTION refuse_append_only_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'the owner must drop or disable the trigger explicitly to change history';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();

CREATE TRIGGER session_history_append_only BEFORE UPDATE OR DELETE ON session_history
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER session_history_no_truncate BEFORE TRUNCATE ON session_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();

CREATE TRIGGER processed_events_append_only BEFORE UPDATE OR DELETE ON processed_events
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER processed_events_no_truncate BEFORE TRUNCATE ON processed_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();

-- processed_events had only the default DML grants; cut them to match the other two.
REVOKE UPDATE, DELETE, TRUNCATE ON processed_events FROM paygate_session;
