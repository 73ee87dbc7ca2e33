-- Append-only for real (issue 20, contract §9), made consistent with the other services: the same
-- refuse_append_only_change() function, the same trigger names (<table>_append_only for UPDATE/DELETE rows,
-- <table>_no_truncate for TRUNCATE), and TRUNCATE refused too, which row triggers never see.
-- 0001 already refused UPDATE/DELETE on billing_audit and DELETE on invoices (and guarded invoice updates
-- down to issued -> void); a TRUNCATE by the owner went through both.

CREATE FUNCTION refuse_append_only_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'the owner must drop or disable the trigger explicitly to change history';
END $$;

DROP TRIGGER billing_audit_append_only ON billing_audit;
DROP FUNCTION billing_audit_refuse_change();
CREATE TRIGGER billing_audit_append_only BEFORE UPDATE OR DELETE ON billing_audit
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER billing_audit_no_truncate BEFORE TRUNCATE ON billing_audit
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();

-- Issued invoices are immutable but not append-only (status issued -> void is the one allowed update,
-- guarded by invoices_guard_update); they are never removed, by DELETE (invoices_refuse_delete) or TRUNCATE.
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();
REVOKE TRUNCATE ON invoices FROM paygate_billing;
