ALTER TABLE "qs_clients" ADD COLUMN "queue_depth" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "qs_clients" ADD COLUMN "gap_open" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "qs_messages" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "qs_messages_expires_idx" ON "qs_messages" USING btree ("expires_at");--> statement-breakpoint
ALTER TABLE "qs_users" DROP COLUMN "created_at";--> statement-breakpoint
-- The depth counter starts from what each queue holds.
UPDATE "qs_clients" AS c SET "queue_depth" = (SELECT count(*) FROM "qs_messages" AS m WHERE m."client_id" = c."client_id");--> statement-breakpoint
-- Exact times already stored are coarsened like the new ones (issue #13: timestamps that link records).
UPDATE "qs_clients" SET "last_key_update_at" = date_trunc('hour', "last_key_update_at"), "listener_until" = NULL;--> statement-breakpoint
UPDATE "qs_handled_fan_outs" SET "handled_at" = date_trunc('hour', "handled_at");--> statement-breakpoint
UPDATE "qs_previous_auth_keys" SET "valid_until" = date_trunc('hour', "valid_until") + interval '1 hour';
