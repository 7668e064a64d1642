CREATE TABLE "remote_as_credentials" (
	"domain" text PRIMARY KEY NOT NULL,
	"response" "bytea" NOT NULL,
	"fetched_at" timestamp with time zone NOT NULL
);
