-- Issue 16: a webhook body (about 3 KB for a Stripe checkout event) is stored as received, uncompressed and
-- in the row. At the default toast_tuple_target (about 2 KB) PostgreSQL pglz-compresses every such body on
-- INSERT, on the reply path, and that was half of the insert's backend CPU: about 50 µs a row before, about
-- 25 µs after, measured with 64-row batches of the shipped Stripe shapes (README, "Measured figures"). Rows
-- that fit the 8 KB page keep their bodies inline; larger bodies are compressed and moved out of line as
-- before. The price is disk: an inbox row takes about twice the space.
ALTER TABLE inbox_events SET (toast_tuple_target = 8160);
