-- Per-merchant billing profile (seller on invoices, invoice prefix, tax rate).
CREATE TABLE billing_profiles (
    merchant_id            uuid PRIMARY KEY,
    seller_name            text NOT NULL DEFAULT '',
    invoice_prefix         text NOT NULL DEFAULT 'INV' CHECK (invoice_prefix ~ '^[A-Z0-9]{1,12}$'),
    tax_rate_bps           integer NOT NULL DEFAULT 0 CHECK (tax_rate_bps BETWEEN 0 AND 10000),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
