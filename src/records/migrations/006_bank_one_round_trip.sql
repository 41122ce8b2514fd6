-- A deposit or withdrawal in ONE round trip (Ledger.moveOnce): claim the Idempotency-Key, the
-- guarded move, its posting and the stored answer, in one call, so one implicit transaction. The
-- semantics are Idempotency.run's (src/idempotency/idempotency.ts): the key's row is the lock, and
-- a refusal is stored without any effect. The answer: `claimed` false means the key was used
-- before, and the rest is what it stored (the caller replays it, or answers 422 for another body).
CREATE FUNCTION bank_move_once(
  p_user uuid,
  p_key text,
  p_fingerprint text,
  p_in_progress_wait text,
  p_kind text,
  p_delta bigint,
  p_opening bigint,
  p_refusal_status integer,
  p_refusal jsonb,
  p_shown bigint,
  OUT claimed boolean,
  OUT key_fingerprint text,
  OUT answer_status integer,
  OUT answer_body jsonb
) LANGUAGE plpgsql AS $$
DECLARE
  saved_lock_timeout text := current_setting('lock_timeout');
  posted ledger%ROWTYPE;
BEGIN
  -- A duplicate waits for the first request's key at most p_in_progress_wait (then 55P03: 409).
  PERFORM set_config('lock_timeout', p_in_progress_wait, true);
  INSERT INTO idempotency_keys (user_id, key, fingerprint, response_status, response_body)
    VALUES (p_user, p_key, p_fingerprint, 0, 'null')
    ON CONFLICT (user_id, key) DO NOTHING;
  claimed := FOUND;
  PERFORM set_config('lock_timeout', saved_lock_timeout, true);
  IF NOT claimed THEN
    SELECT k.fingerprint, k.response_status, k.response_body INTO key_fingerprint, answer_status, answer_body
      FROM idempotency_keys k WHERE k.user_id = p_user AND k.key = p_key;
    RETURN;
  END IF;
  key_fingerprint := p_fingerprint;

  -- The guarded move (GUARDED_MOVE in src/bank/queries.ts) and its posting. An account that does
  -- not exist yet is opened with its starting money and the move tried once more, whether this
  -- call opened it or a concurrent first touch did (ON CONFLICT waited for that one to commit, and
  -- the next statement sees its row); not when the move would be refused anyway, since a refusal
  -- leaves nothing behind.
  FOR attempt IN 1..2 LOOP
    WITH moved AS (
      UPDATE accounts SET balance_cents = balance_cents + p_delta
        WHERE user_id = p_user AND balance_cents + p_delta >= 0 RETURNING balance_cents
    )
    INSERT INTO ledger (user_id, kind, amount_cents, balance_after_cents, idempotency_key)
      SELECT p_user, p_kind, abs(p_delta), balance_cents, p_key FROM moved
      RETURNING * INTO posted;
    EXIT WHEN FOUND OR attempt = 2 OR p_opening + p_delta < 0;
    INSERT INTO accounts (user_id, balance_cents) VALUES (p_user, p_opening) ON CONFLICT (user_id) DO NOTHING;
  END LOOP;

  IF posted.id IS NULL THEN
    answer_status := p_refusal_status;
    answer_body := p_refusal;
  ELSE
    -- The Movement of src/bank/schemas.ts; createdAt as JavaScript's toISOString writes it.
    answer_status := 200;
    answer_body := jsonb_build_object(
      'balanceCents', coalesce(p_shown, posted.balance_after_cents),
      'transaction', jsonb_build_object(
        'id', posted.id,
        'kind', posted.kind,
        'amountCents', posted.amount_cents,
        'balanceAfterCents', posted.balance_after_cents,
        'createdAt', to_char(posted.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      )
    );
  END IF;
  UPDATE idempotency_keys SET response_status = answer_status, response_body = answer_body
    WHERE user_id = p_user AND key = p_key;
END;
$$;
