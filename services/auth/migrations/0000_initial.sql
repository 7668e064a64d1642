CREATE TABLE "as_credentials" (
	"fingerprint" "bytea" PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"credential" "bytea" NOT NULL,
	"signing_key" "bytea",
	"not_before" timestamp with time zone NOT NULL,
	"not_after" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "clients" (
	"user_uuid" "bytea" NOT NULL,
	"client_uuid" "bytea" NOT NULL,
	"credential" "bytea" NOT NULL,
	"signature_key" "bytea" NOT NULL,
	"credential_not_after" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"last_active_at" timestamp with time zone NOT NULL,
	CONSTRAINT "clients_user_uuid_client_uuid_pk" PRIMARY KEY("user_uuid","client_uuid")
);
--> statement-breakpoint
CREATE TABLE "connection_packages" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "connection_packages_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"user_uuid" "bytea",
	"client_uuid" "bytea",
	"handle_hash" "bytea",
	"package" "bytea" NOT NULL,
	"last_resort" boolean NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "connection_packages_one_owner" CHECK (("connection_packages"."handle_hash" IS NULL) <> ("connection_packages"."user_uuid" IS NULL AND "connection_packages"."client_uuid" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "connection_queues" (
	"queue_id" "bytea" PRIMARY KEY NOT NULL,
	"user_uuid" "bytea",
	"client_uuid" "bytea",
	"handle_hash" "bytea",
	"encryption_key" "bytea" NOT NULL,
	"ratchet_state" "bytea" NOT NULL,
	"next_sequence" bigint NOT NULL,
	CONSTRAINT "connection_queues_client_key" UNIQUE("user_uuid","client_uuid"),
	CONSTRAINT "connection_queues_handle_key" UNIQUE("handle_hash"),
	CONSTRAINT "connection_queues_one_owner" CHECK (("connection_queues"."handle_hash" IS NULL) <> ("connection_queues"."user_uuid" IS NULL AND "connection_queues"."client_uuid" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "handles" (
	"handle_hash" "bytea" PRIMARY KEY NOT NULL,
	"verifying_key" "bytea" NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "queue_messages" (
	"queue_id" "bytea" NOT NULL,
	"sequence_number" bigint NOT NULL,
	"ciphertext" "bytea" NOT NULL,
	CONSTRAINT "queue_messages_queue_id_sequence_number_pk" PRIMARY KEY("queue_id","sequence_number")
);
--> statement-breakpoint
CREATE TABLE "revoked_credentials" (
	"fingerprint" "bytea" PRIMARY KEY NOT NULL,
	"revoked_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "seen_requests" (
	"key" "bytea" PRIMARY KEY NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_profiles" (
	"user_uuid" "bytea" NOT NULL,
	"slot" text NOT NULL,
	"key_index" "bytea" NOT NULL,
	"profile" "bytea" NOT NULL,
	CONSTRAINT "user_profiles_user_uuid_slot_pk" PRIMARY KEY("user_uuid","slot")
);
--> statement-breakpoint
CREATE TABLE "users" (
	"user_uuid" "bytea" PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "clients" ADD CONSTRAINT "clients_user_uuid_users_user_uuid_fk" FOREIGN KEY ("user_uuid") REFERENCES "public"."users"("user_uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connection_packages" ADD CONSTRAINT "connection_packages_handle_hash_handles_handle_hash_fk" FOREIGN KEY ("handle_hash") REFERENCES "public"."handles"("handle_hash") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connection_packages" ADD CONSTRAINT "connection_packages_user_uuid_client_uuid_clients_user_uuid_client_uuid_fk" FOREIGN KEY ("user_uuid","client_uuid") REFERENCES "public"."clients"("user_uuid","client_uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connection_queues" ADD CONSTRAINT "connection_queues_handle_hash_handles_handle_hash_fk" FOREIGN KEY ("handle_hash") REFERENCES "public"."handles"("handle_hash") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connection_queues" ADD CONSTRAINT "connection_queues_user_uuid_client_uuid_clients_user_uuid_client_uuid_fk" FOREIGN KEY ("user_uuid","client_uuid") REFERENCES "public"."clients"("user_uuid","client_uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "queue_messages" ADD CONSTRAINT "queue_messages_queue_id_connection_queues_queue_id_fk" FOREIGN KEY ("queue_id") REFERENCES "public"."connection_queues"("queue_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_profiles" ADD CONSTRAINT "user_profiles_user_uuid_users_user_uuid_fk" FOREIGN KEY ("user_uuid") REFERENCES "public"."users"("user_uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "as_credentials_kind_created_idx" ON "as_credentials" USING btree ("kind","created_at");--> statement-breakpoint
CREATE INDEX "clients_last_active_idx" ON "clients" USING btree ("last_active_at");--> statement-breakpoint
CREATE INDEX "connection_packages_client_idx" ON "connection_packages" USING btree ("user_uuid","client_uuid");--> statement-breakpoint
CREATE INDEX "connection_packages_handle_idx" ON "connection_packages" USING btree ("handle_hash");--> statement-breakpoint
CREATE INDEX "connection_packages_expires_idx" ON "connection_packages" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "handles_expires_idx" ON "handles" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "seen_requests_expires_idx" ON "seen_requests" USING btree ("expires_at");