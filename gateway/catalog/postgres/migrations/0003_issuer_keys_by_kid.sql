-- Version 3: find a key's issuer from its kid alone (active keys only).
CREATE INDEX issuer_keys_by_kid ON issuer_keys(kid) WHERE revoked_at IS NULL;
