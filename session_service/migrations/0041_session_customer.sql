-- The buyer a session's invoice names (contract §9): {"name", "country", "address_lines", "vat_id"}, validated
-- by session_service.domain.customer; NULL when the merchant gave none. Additive: old rows stay NULL.
ALTER TABLE sessions ADD COLUMN customer jsonb;
