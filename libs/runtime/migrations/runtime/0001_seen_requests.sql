CREATE TABLE "phoenix_runtime"."seen_requests" (
	"marker" "bytea" PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "seen_requests_expires_idx" ON "phoenix_runtime"."seen_requests" USING btree ("expires_at");