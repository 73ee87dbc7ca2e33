"""Pure session domain: pricing (on paygate_runtime.money), the one-way state machine, payment-event
decisions, expiry and the fulfilment retry schedule.
No I/O here: no database, no network, no clock (callers pass `now`)."""
