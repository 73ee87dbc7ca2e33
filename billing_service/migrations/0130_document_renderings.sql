-- A document once sent never changes on a later download. Invoices and credit notes were rendered (PDF, HTML)
-- from the stored row on every download, so any change of rendering code (wording, layout, a fixed bug) or of the
-- profile data read at render time (the support email) silently changed documents already sent: the release
-- that reworded credit notes ("Refund due" became "Refunded ... Amount due 0.00") rewrote every past credit
-- note on its next download.
--
-- Now the first rendering of each document in each state and format is stored here, and every later download
-- serves exactly these bytes. The state is part of the key because a void is the one change an issued document
-- has (issued -> void): the copy sent while it was valid stays as it was, and a download after the void gets a
-- copy stamped VOID (stored in its turn), never the earlier copy that reads as a valid invoice. BillingService.render_invoice renders on the first download only (never at issue: issuing
-- is on the payment hot path), inserts ON CONFLICT DO NOTHING and returns whatever row is stored, so two
-- concurrent first downloads return the same bytes. 'xml' is the Factur-X XML the PDF embeds, stored from the
-- same rendering in the same transaction (after its PDF), so the two never disagree.
--
-- Additive only: the previous release, while it still serves, neither reads nor writes this table.
-- No foreign key to invoices: adding one would take a lock on the hot invoices table while the previous release
-- issues; rows are written only for a document the service has just loaded, and invoices are never deleted.
CREATE TABLE document_renderings (
    -- The invoice or credit note (invoices.id).
    document_id       uuid NOT NULL,
    -- invoices.status when it was rendered.
    status            text NOT NULL CHECK (status IN ('issued', 'void')),
    format            text NOT NULL CHECK (format IN ('pdf', 'html', 'xml')),
    content           bytea NOT NULL,
    -- Computed by the database from the bytes, so it can never disagree with them.
    sha256            bytea GENERATED ALWAYS AS (sha256(content)) STORED,
    rendered_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Which code rendered it (renderer revision and library versions), for whoever compares with a re-render.
    renderer_version  text NOT NULL CHECK (length(renderer_version) BETWEEN 1 AND 200),
    PRIMARY KEY (document_id, status, format)
);

-- Append-only like the other records (0040): the runtime role may insert and read; nobody updates, deletes or
-- truncates without dropping or disabling a trigger explicitly.
REVOKE UPDATE, DELETE, TRUNCATE ON document_renderings FROM paygate_billing;
CREATE TRIGGER document_renderings_append_only BEFORE UPDATE OR DELETE ON document_renderings
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER document_renderings_no_truncate BEFORE TRUNCATE ON document_renderings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();
