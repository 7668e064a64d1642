CREATE TABLE "qs_seen_requests" (
	"marker" "bytea" PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "qs_seen_requests_expires_idx" ON "qs_seen_requests" USING btree ("expires_at");