CREATE TABLE "qs_previous_auth_keys" (
	"client_id" "bytea" NOT NULL,
	"auth_key" "bytea" NOT NULL,
	"valid_until" timestamp with time zone NOT NULL,
	CONSTRAINT "qs_previous_auth_keys_client_id_auth_key_pk" PRIMARY KEY("client_id","auth_key")
);
--> statement-breakpoint
ALTER TABLE "qs_previous_auth_keys" ADD CONSTRAINT "qs_previous_auth_keys_client_id_qs_clients_client_id_fk" FOREIGN KEY ("client_id") REFERENCES "public"."qs_clients"("client_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "qs_previous_auth_keys_until_idx" ON "qs_previous_auth_keys" USING btree ("valid_until");