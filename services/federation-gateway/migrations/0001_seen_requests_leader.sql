CREATE TABLE "fed_outbound_leader" (
	"id" integer PRIMARY KEY NOT NULL,
	"clean" boolean NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fed_seen_requests" (
	"request_key" "bytea" PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
