-- Numbering never gets stuck when a merchant switches reset_numbering_yearly (or its prefix) mid-year.
-- The never-resetting counter (period 0) and the year's counter print into one series, `{PREFIX}-{YYYY}-{NNNNNN}`
-- with the year of issue: after INV-2026-000001 from period 0, the year's counter started at 1 and collided on
-- invoices_merchant_id_mode_number_key for ever (the failed insert rolled its counter back with it).
--
-- draw_invoice_sequence() is the counter step of the issuing statement: it increments the counter as before and
-- then, when the series' other counter exists, skips every sequence whose printed number this merchant and
-- mode already has, leaving the counter on the sequence it hands out. It is billing_service.domain.numbering.first_free_sequence, in the database.
-- A switched counter so carries on right after the other counter's numbers. Two counters drawing the same
-- number at the same moment: the second insert waits on the unique index and fails once; by then the first's
-- row is committed, so the retry's probe sees it and skips it.
-- Only a function: the previous release's statement keeps working unchanged while it still serves.
CREATE OR REPLACE FUNCTION draw_invoice_sequence(
    p_merchant_id text, p_mode text, p_period integer, p_prefix text, p_year integer
) RETURNS bigint LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    drawn bigint;
    chosen bigint;
BEGIN
    INSERT INTO invoice_counters AS c (merchant_id, mode, period, last_sequence)
    VALUES (p_merchant_id, p_mode, p_period, 1)
    ON CONFLICT (merchant_id, mode, period) DO UPDATE SET last_sequence = c.last_sequence + 1
    RETURNING last_sequence INTO drawn;
    chosen := drawn;
    -- Only the other counter of this year's series can have printed this number (one counter's own sequence
    -- never repeats, whatever its prefix): without it, as for every merchant that never switched, there is
    -- nothing to probe, and issuing costs what it did. The probe is not free on a fresh deployment: with the
    -- statistics of an empty table the planner reads the merchant's invoices by invoices_merchant_issued and
    -- filters on the number, one pass over all of them per invoice (a first burst of 9,000 invoices went from
    -- 341 to 81 fulfilled sessions/s before this test was added).
    IF EXISTS (SELECT 1 FROM invoice_counters
                WHERE merchant_id = p_merchant_id AND mode = p_mode
                  AND period = CASE WHEN p_period = 0 THEN p_year ELSE 0 END) THEN
        -- Each probe runs with a fresh snapshot (READ COMMITTED): a number committed by the other counter
        -- meanwhile is seen. The loop ends: the merchant's printed numbers are finitely many.
        WHILE EXISTS (SELECT 1 FROM invoices
                       WHERE merchant_id = p_merchant_id AND mode = p_mode
                         AND number = format_invoice_number(p_prefix, p_year, chosen)) LOOP
            chosen := chosen + 1;
        END LOOP;
    END IF;
    IF chosen <> drawn THEN
        -- The skipped sequences are the other counter's numbers: this counter never hands them out.
        UPDATE invoice_counters SET last_sequence = chosen
         WHERE merchant_id = p_merchant_id AND mode = p_mode AND period = p_period;
    END IF;
    RETURN chosen;
END $$;
