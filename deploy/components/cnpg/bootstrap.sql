-- paygate database bootstrap: 4 schemas, 8 roles.
-- CloudNativePG runs this once as superuser in the application database (postInitApplicationSQLRefs).
-- For an external Postgres run it with psql as a superuser in the paygate database, then set the
-- passwords (docs/deploy.md). It is idempotent.
--
-- paygate_<svc>_owner owns schema <svc> and runs `paygate migrate --service <svc>`.
-- paygate_<svc> is the runtime role: USAGE on its schema and DML on the owner's tables, but no
-- CREATE and no ownership, so it can neither create nor alter tables.

REVOKE ALL ON DATABASE paygate FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

DO $bootstrap$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['session', 'billing', 'keys', 'gateway'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = format('paygate_%s_owner', svc)) THEN
            -- LOGIN and the password are set by CNPG managed roles (or by hand for an external DB).
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', format('paygate_%s_owner', svc));
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = format('paygate_%s', svc)) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', format('paygate_%s', svc));
        END IF;

        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(),
                       format('paygate_%s_owner', svc), format('paygate_%s', svc));

        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc, format('paygate_%s_owner', svc));
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', svc, format('paygate_%s_owner', svc));
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', svc, format('paygate_%s', svc));

        -- Tables, sequences and functions the owner creates later (migrations) are usable by the
        -- runtime role without a GRANT in every migration.
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I '
                       'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                       format('paygate_%s_owner', svc), svc, format('paygate_%s', svc));
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I '
                       'GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I',
                       format('paygate_%s_owner', svc), svc, format('paygate_%s', svc));
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I '
                       'GRANT EXECUTE ON FUNCTIONS TO %I',
                       format('paygate_%s_owner', svc), svc, format('paygate_%s', svc));
        -- No GRANT ... ON ALL TABLES here: tables exist only through migrations, which get the default
        -- privileges above and then cut them (REVOKE UPDATE, DELETE on audit, history, inbox, ledger).
        -- Re-granting on a re-run would silently undo those cuts (issue 20).

        EXECUTE format('ALTER ROLE %I SET search_path = %I', format('paygate_%s_owner', svc), svc);
        EXECUTE format('ALTER ROLE %I SET search_path = %I', format('paygate_%s', svc), svc);
    END LOOP;
END
$bootstrap$;
