-- A session event's snapshot shows the session's refunds as GET /v1/sessions/{id} does (issue 18): besides the
-- row's own amount_refunded_minor and dispute_status (to_jsonb(s) has them since 0060), the refunds of the
-- session as committed. A refund use case writes its refund rows before the statement that moves the session
-- to 'refunded', so the AFTER trigger that takes this snapshot sees them.
CREATE OR REPLACE FUNCTION session_snapshot(s sessions) RETURNS jsonb
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT to_jsonb(s)
           || jsonb_build_object(
                'history', COALESCE((SELECT jsonb_agg(to_jsonb(h) ORDER BY h.id)
                                       FROM session_history h WHERE h.session_id = s.id), '[]'::jsonb),
                'alerts', COALESCE((SELECT jsonb_agg(to_jsonb(a) ORDER BY a.at, a.code)
                                      FROM session_alerts a WHERE a.session_id = s.id), '[]'::jsonb),
                'refunds', COALESCE((SELECT jsonb_agg(to_jsonb(r) ORDER BY r.created_at, r.id)
                                       FROM refunds r WHERE r.session_id = s.id), '[]'::jsonb))
$$;
