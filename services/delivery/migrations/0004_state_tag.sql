-- Every write of a group's state draws a fresh random state_tag: the in-memory state cache
-- (src/domain/state-cache.ts) checks it in the locked read. Existing rows get an empty tag and are
-- not cached until their next write.
ALTER TABLE "groups" ADD COLUMN "state_tag" "bytea" DEFAULT '\x'::bytea NOT NULL;