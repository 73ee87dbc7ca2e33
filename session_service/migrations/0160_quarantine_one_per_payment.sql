-- One provider payment's money is quarantined once (contract §4, §11).
--
-- A provider reports one payment under several event ids: One.com's webhook and reconciliation's read of its
-- API, Stripe's checkout.session.completed and payment_intent.succeeded. A quarantined payment leaves the
-- session open, so the same money came back and opened a second entry (and a second quarantine.created): a
-- merchant could refund the customer twice. An entry opened by an event that reports money received now
-- `holds_payment`, and a session holds at most one such entry per (provider, provider_reference); a later report
-- of that payment is the recorded no-op `already_quarantined` (domain/payment_events.py decides it, this index
-- settles two reports that race).
ALTER TABLE quarantine ADD COLUMN holds_payment boolean NOT NULL DEFAULT false;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_payment_has_reference
    CHECK (NOT holds_payment OR provider_reference IS NOT NULL);

-- Entries opened before: amount_mismatch, overpaid and payment_on_closed_session are opened only by an event that
-- reports money received, so they hold their payment. Where one payment already has several (what this fixes),
-- the oldest holds it; the others keep their status for the merchant to resolve (dismiss), and nothing new is
-- ever matched to them. mode_mismatch and provider_mismatch entries may come from any kind of event and stay as
-- they are.
UPDATE quarantine SET holds_payment = true
 WHERE id IN (SELECT DISTINCT ON (session_id, provider, provider_reference) id
                FROM quarantine
               WHERE reason IN ('amount_mismatch', 'overpaid', 'payment_on_closed_session')
                 AND provider_reference IS NOT NULL
               ORDER BY session_id, provider, provider_reference, created_at, id);

-- Also what an event's read uses to find the payments its session holds (session_id first).
CREATE UNIQUE INDEX quarantine_one_per_payment ON quarantine (session_id, provider, provider_reference)
    WHERE holds_payment;
