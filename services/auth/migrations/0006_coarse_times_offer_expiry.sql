ALTER TABLE "queue_messages" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "queue_messages_expires_idx" ON "queue_messages" USING btree ("expires_at");--> statement-breakpoint
ALTER TABLE "connection_queues" DROP COLUMN "enqueue_tokens";--> statement-breakpoint
ALTER TABLE "connection_queues" DROP COLUMN "enqueue_tokens_at";--> statement-breakpoint
ALTER TABLE "handles" DROP COLUMN "created_at";--> statement-breakpoint
ALTER TABLE "users" DROP COLUMN "created_at";--> statement-breakpoint
-- Coarsen the times already stored to the precision the AS now writes (services/auth/src/domain/coarse-time.ts):
-- event times to the UTC month, expiry times to the UTC hour (down where serving past it would be wrong, up for handles).
-- Offers queued before this migration cannot be told apart from queue-ratchet messages and keep no expiry.
UPDATE "clients" SET "created_at" = date_trunc('month', "created_at" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
  "credential_not_after" = date_trunc('hour', "credential_not_after" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';--> statement-breakpoint
UPDATE "revoked_credentials" SET "revoked_at" = date_trunc('month', "revoked_at" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';--> statement-breakpoint
UPDATE "connection_packages" SET "expires_at" = date_trunc('hour', "expires_at" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';--> statement-breakpoint
UPDATE "handles" SET "expires_at" = date_trunc('hour', ("expires_at" AT TIME ZONE 'UTC') + interval '1 hour' - interval '1 microsecond') AT TIME ZONE 'UTC';
