ALTER TABLE "connection_queues" ADD COLUMN "enqueue_tokens" double precision;--> statement-breakpoint
ALTER TABLE "connection_queues" ADD COLUMN "enqueue_tokens_at" timestamp with time zone;