CREATE TABLE "qs_add_packages" (
	"id" integer PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "qs_add_packages_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1),
	"client_id" "bytea" NOT NULL,
	"last_resort" boolean NOT NULL,
	"encrypted_add_package" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "qs_blocklist" (
	"client_id" "bytea" NOT NULL,
	"entry" "bytea" NOT NULL,
	CONSTRAINT "qs_blocklist_client_id_entry_pk" PRIMARY KEY("client_id","entry")
);
--> statement-breakpoint
CREATE TABLE "qs_clients" (
	"client_id" "bytea" PRIMARY KEY NOT NULL,
	"user_id" "bytea" NOT NULL,
	"auth_key" "bytea" NOT NULL,
	"queue_key" "bytea" NOT NULL,
	"encrypted_ratchet" "bytea" NOT NULL,
	"next_seq" bigint DEFAULT 0 NOT NULL,
	"last_key_update_at" timestamp with time zone NOT NULL,
	"key_update_due" boolean DEFAULT false NOT NULL,
	"encrypted_push_token" "bytea",
	"listener_until" timestamp with time zone,
	"last_active_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "qs_handled_fan_outs" (
	"marker" "bytea" PRIMARY KEY NOT NULL,
	"handled_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "qs_keys" (
	"key_id" "bytea" PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"public_key" "bytea" NOT NULL,
	"wrapped_private_key" "bytea" NOT NULL,
	"not_before" timestamp with time zone NOT NULL,
	"not_after" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "qs_messages" (
	"client_id" "bytea" NOT NULL,
	"seq" bigint NOT NULL,
	"message" "bytea" NOT NULL,
	CONSTRAINT "qs_messages_client_id_seq_pk" PRIMARY KEY("client_id","seq")
);
--> statement-breakpoint
CREATE TABLE "qs_users" (
	"user_id" "bytea" PRIMARY KEY NOT NULL,
	"auth_key" "bytea" NOT NULL,
	"friendship_token_hash" "bytea" NOT NULL,
	"encrypted_friendship_token" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "qs_users_friendship_token_hash_unique" UNIQUE("friendship_token_hash")
);
--> statement-breakpoint
ALTER TABLE "qs_add_packages" ADD CONSTRAINT "qs_add_packages_client_id_qs_clients_client_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."qs_clients"("client_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "qs_blocklist" ADD CONSTRAINT "qs_blocklist_client_id_qs_clients_client_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."qs_clients"("client_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "qs_clients" ADD CONSTRAINT "qs_clients_user_id_qs_users_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."qs_users"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "qs_messages" ADD CONSTRAINT "qs_messages_client_id_qs_clients_client_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."qs_clients"("client_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "qs_add_packages_client_idx" ON "qs_add_packages" USING btree ("client_id","last_resort");--> statement-breakpoint
CREATE INDEX "qs_clients_user_idx" ON "qs_clients" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "qs_clients_active_idx" ON "qs_clients" USING btree ("last_active_at");--> statement-breakpoint
CREATE INDEX "qs_handled_fan_outs_at_idx" ON "qs_handled_fan_outs" USING btree ("handled_at");