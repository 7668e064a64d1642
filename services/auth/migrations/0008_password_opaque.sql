CREATE TABLE "add_client_grants" (
	"grant_hash" "bytea" PRIMARY KEY NOT NULL,
	"user_uuid" "bytea" NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"sealed_expiry" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "opaque_server_setup" (
	"id" integer PRIMARY KEY NOT NULL,
	"setup" "bytea" NOT NULL,
	"setup_kek_id" "bytea" NOT NULL,
	CONSTRAINT "opaque_server_setup_single_row" CHECK ("opaque_server_setup"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "password_logins" (
	"login_id" "bytea" PRIMARY KEY NOT NULL,
	"state" "bytea" NOT NULL,
	"state_kek_id" "bytea" NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "password_records" (
	"user_uuid" "bytea" PRIMARY KEY NOT NULL,
	"record" "bytea" NOT NULL
);
--> statement-breakpoint
ALTER TABLE "add_client_grants" ADD CONSTRAINT "add_client_grants_user_uuid_users_user_uuid_fk" FOREIGN KEY ("user_uuid") REFERENCES "public"."users"("user_uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "password_records" ADD CONSTRAINT "password_records_user_uuid_users_user_uuid_fk" FOREIGN KEY ("user_uuid") REFERENCES "public"."users"("user_uuid") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "add_client_grants_user_idx" ON "add_client_grants" USING btree ("user_uuid");--> statement-breakpoint
CREATE INDEX "add_client_grants_expires_idx" ON "add_client_grants" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "password_logins_expires_idx" ON "password_logins" USING btree ("expires_at");