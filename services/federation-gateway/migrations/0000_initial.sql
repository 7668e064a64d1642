CREATE TABLE "fed_inbound_envelopes" (
	"envelope_id" "bytea" PRIMARY KEY NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fed_outbound_peers" (
	"domain" text PRIMARY KEY NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fed_own_keys" (
	"key_id" "bytea" PRIMARY KEY NOT NULL,
	"public_key" "bytea" NOT NULL,
	"seed" "bytea" NOT NULL,
	"not_before" timestamp with time zone NOT NULL,
	"not_after" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "fed_peer_keys" (
	"domain" text NOT NULL,
	"key_id" "bytea" NOT NULL,
	"public_key" "bytea" NOT NULL,
	"not_before" timestamp with time zone NOT NULL,
	"not_after" timestamp with time zone NOT NULL,
	"fetched_at" timestamp with time zone NOT NULL,
	CONSTRAINT "fed_peer_keys_domain_key_id_pk" PRIMARY KEY("domain","key_id")
);
