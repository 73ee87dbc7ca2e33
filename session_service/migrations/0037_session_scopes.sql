-- Contract §12: the scopes a merchant grants the session's customer key ('*' = every scope). The keys
-- service receives them with IssueCustomerKey; the customer may narrow them in the portal, never widen.
ALTER TABLE sessions
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{*}'
        CHECK (cardinality(scopes) BETWEEN 1 AND 32);
