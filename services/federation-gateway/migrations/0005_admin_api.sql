CREATE TABLE "admin_audit" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "admin_audit_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone NOT NULL,
	"operator" text NOT NULL,
	"authenticated" boolean NOT NULL,
	"method" text NOT NULL,
	"target" text NOT NULL,
	"outcome" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "admin_settings" (
	"name" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fed_peer_stats" (
	"domain" text PRIMARY KEY NOT NULL,
	"last_inbound_at" timestamp with time zone,
	"last_outbound_at" timestamp with time zone,
	"last_seen_at" timestamp with time zone NOT NULL,
	"inbound_policy_refusals" bigint DEFAULT 0 NOT NULL,
	"inbound_signature_refusals" bigint DEFAULT 0 NOT NULL,
	"outbound_failures" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "admin_audit_at_idx" ON "admin_audit" USING btree ("at");